#!/usr/bin/env bash
# Runs every test: the lab core and CLI natively, and a compile check of the core for wasm32.
# Installs what it needs (the wasm32 target) and keeps the build cache outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "installing the wasm32 target"
  rustup target add wasm32-unknown-unknown
fi

step "native tests (release profile: the tests train real networks)"
cargo test --release --locked

step "the lab core compiles for wasm32-unknown-unknown"
cargo check --lib --release --locked --target wasm32-unknown-unknown
