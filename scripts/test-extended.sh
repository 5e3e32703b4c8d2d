#!/usr/bin/env bash
# The extended suite: slow checks kept out of the default run (scripts/test.sh) to hold its cold time
# under the CI limit. Run it before resolving an issue that touches what it covers:
# - every lesson's experiments and claims (tests/lessons.rs, its ignored tests; about 3.5 minutes) and
#   Neural Cleanse on three challenge codes (tests/challenge.rs; about a minute),
# - the CLI's `--device wgpu` on Mesa's software Vulkan (tests/wgpu.rs) and flex checked against burn's
#   independent ndarray backend (tests/device.rs): the default run builds without the `wgpu` and `ndarray`
#   features, so this builds those backends natively once more,
# - the page on WebGPU in headless Chromium on SwiftShader (the self-check, training like the CPU, and a
#   device lost mid-run finishing on the CPU), about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
bash scripts/setup-web.sh --browser
cargo test --release --locked --no-default-features --test all -- --ignored
cargo test --release --locked --test wgpu --test device
trunk build --release
(cd tests/e2e && node --test --test-concurrency=1 ./*.extended.mjs)
