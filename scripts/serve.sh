#!/usr/bin/env bash
# Serves the app on http://127.0.0.1:8080, installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
bash scripts/setup-web.sh
exec trunk serve --release --no-autoreload --address 127.0.0.1 --port "${PORT:-8080}"
