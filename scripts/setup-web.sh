#!/usr/bin/env bash
# Installs what building and testing the web app needs, skipping what is present:
# the wasm32 target, Trunk 0.21.14, the wasm-bindgen CLI matching Cargo.lock, and (with --browser)
# Debian's Chromium and chromedriver plus the end-to-end test's npm packages. No tool is downloaded from outside the
# package registries (Trunk itself runs offline, see Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "installing the wasm32 target"
  rustup target add wasm32-unknown-unknown
fi

# trunk 0.22 needs a newer rustc than 1.95; 0.21.14 is the last that builds here.
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  say "installing trunk 0.21.14 (about 6 minutes)"
  cargo install --locked trunk@0.21.14
fi

wbg=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
  say "installing wasm-bindgen-cli $wbg"
  # Not --locked: its lockfile pins a webpki-roots release the registry here lacks.
  cargo install wasm-bindgen-cli@"$wbg"
fi

if [ "${1:-}" = "--browser" ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing Debian's chromium and chromedriver"
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    say "installing the end-to-end test's npm packages"
    (cd tests/e2e && npm ci --no-audit --no-fund)
  fi
fi

# Trunk runs cargo with --offline: fetch every crate first.
cargo fetch --locked >/dev/null
