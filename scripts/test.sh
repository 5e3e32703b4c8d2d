#!/usr/bin/env bash
# Runs every test: the lab core and CLI natively, then the page built for wasm32 (which also proves
# the lab core compiles for wasm32) and driven end to end in headless Chromium.
# Installs what it needs and keeps the build cache outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Each step says when it started (seconds into the run): where a slow CI run spent its time.
step() { printf '\n==> %s (at %s s)\n' "$*" "$SECONDS"; }

step "tools"
bash scripts/setup-web.sh --browser

step "the deployment workflow (GitHub's schema, and the README's commands)"
bash scripts/check-workflow.sh

step "native tests (release profile: the tests train real networks)"
# Without burn's wgpu and ndarray backends (the default features): they are most of a cold native
# build; the extended suite (scripts/test-extended.sh) builds them and runs tests/wgpu.rs and
# tests/device.rs, and the lessons' experiments.
cargo test --release --locked --no-default-features

step "the page and the lab worker for wasm32 (trunk build --release)"
t=$(date +%s)
trunk build --release
echo "trunk build: $(( $(date +%s) - t )) s"
# The download budget (issue 3): both wasm files and the MNIST bundle, gzip-compressed, at most 5 MB.
total=0
for f in dist/*.wasm dist/data/mnist.bin; do
    gz=$(gzip -9c "$f" | wc -c)
    total=$(( total + gz ))
    printf '%s: %s bytes, %s gzip\n' "$f" "$(stat -c %s "$f")" "$gz"
done
echo "download (wasm + MNIST, gzip): $total bytes"
if (( total > 5000000 )); then echo "over the 5 MB download budget" >&2; exit 1; fi

step "browser tests of the page's parts (wasm-bindgen-test in headless Chromium)"
# With the page's features (none, index.html), so these reuse the page's build of burn for wasm32.
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" cargo test --profile wasm --locked --target wasm32-unknown-unknown --no-default-features --test web

step "end-to-end tests in headless Chromium"
(cd tests/e2e && node --test --test-concurrency=1)

step "all tests passed"
