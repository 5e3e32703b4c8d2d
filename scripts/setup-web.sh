#!/usr/bin/env bash
# Installs what building and testing the web app needs, skipping what is present:
# the wasm32 target, Trunk 0.21.14, the wasm-bindgen CLI matching Cargo.lock, and (with --browser)
# Debian's Chromium and chromedriver, Mesa's software Vulkan, plus the end-to-end test's npm packages. No tool is downloaded from outside the
# package registries (Trunk itself runs offline, see Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "installing the wasm32 target"
  rustup target add wasm32-unknown-unknown
fi

# The two build tools compile from crates.io. Their release profiles ask for fat LTO with one codegen
# unit, which on 2 cores costs trunk alone 13 minutes; the tools only orchestrate the build, so they
# are built without LTO, in parallel units, and both at once (each one's serial link overlaps the other).
tool_profile=(env CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16)
pids=()
logs=()
# Each install gets its own process group (job control is on while it starts), so stopping one stops the
# rustc processes it spawned too. Whatever is still running is stopped when the script leaves early: one
# install failed, another step failed, or it was interrupted (Ctrl-C reaches only the script's own group).
stop_installs() {
  local i
  for i in "${!pids[@]}"; do
    kill -- "-${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
    rm -f "${logs[$i]}"
  done
}
trap stop_installs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
install() { # name, then cargo install's arguments
  local log
  log=$(mktemp)
  say "installing $1 (a few minutes)"
  set -m
  "${tool_profile[@]}" cargo install "${@:2}" </dev/null >"$log" 2>&1 &
  set +m
  pids+=($!)
  logs+=("$log")
}

# trunk 0.22 needs a newer rustc than 1.95; 0.21.14 is the last that builds here.
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  install "trunk 0.21.14" --locked trunk@0.21.14
fi

wbg=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
  # Not --locked: its lockfile pins a webpki-roots release the registry here lacks.
  install "wasm-bindgen-cli $wbg" wasm-bindgen-cli@"$wbg"
fi

for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    tail -n 40 "${logs[$i]}" >&2
    echo "installing a build tool failed (its log is above)" >&2
    unset 'pids[i]' 'logs[i]'
    exit 1 # the EXIT trap stops the other install and waits for it
  fi
  rm -f "${logs[$i]}"
  unset 'pids[i]' 'logs[i]'
done

if [ "${1:-}" = "--browser" ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing Debian's chromium and chromedriver"
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  # Mesa's software Vulkan (lavapipe): the CLI's `--device wgpu` is tested on it (tests/wgpu.rs, extended suite).
  if ! compgen -G '/usr/share/vulkan/icd.d/lvp_icd.*.json' >/dev/null; then
    say "installing Debian's mesa-vulkan-drivers (lavapipe) and the Vulkan loader"
    apt-get update -qq && apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  if [ ! -d tests/e2e/node_modules/playwright-core ] || [ ! -d tests/e2e/node_modules/axe-core ]; then
    say "installing the end-to-end test's npm packages"
    (cd tests/e2e && npm ci --no-audit --no-fund)
  fi
fi

# Trunk runs cargo with --offline: fetch every crate first.
cargo fetch --locked >/dev/null
