#!/usr/bin/env python3
"""Prints the benchmark's markdown table (ours, the peer, the ratio) from one run's JSON lines.

Usage: summary.py RESULTS.jsonl
"""
import json, statistics, sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def main():
    rows = load(sys.argv[1])
    errors = [r for r in rows if r.get("error")]
    for r in errors:
        print(f"error in {r.get('what', r.get('framework'))} {r.get('query', '')}: {r['error']}", file=sys.stderr)

    def pick(framework=None, label=None, what=None, query_has=None, flags=None):
        out = []
        for r in rows:
            if r.get("error"):
                continue
            if framework and r.get("framework") != framework:
                continue
            if label and r.get("label") != label:
                continue
            if what and r.get("what") != what:
                continue
            if query_has and query_has not in r.get("query", ""):
                continue
            if flags and r.get("flags") != flags:
                continue
            out.append(r)
        return out

    def rate(rs):
        return statistics.mean(r["samples_per_s"] for r in rs) if rs else None

    def pct(rs, key):
        return " / ".join(f"{100 * r[key]:.1f}" for r in rs) if rs else "–"

    lines = ["| where | ours (samples/s) | peer (samples/s) | ratio |", "|---|---|---|---|"]

    def row(where, ours, peer, peer_name):
        o, p = rate(ours), rate(peer)
        fmt = lambda v: f"{v:,.0f}" if v else "–"
        ratio = f"**{o / p:.2f}×**" if o and p else "–"
        lines.append(f"| {where} | {fmt(o)} | {peer_name}: {fmt(p)} | {ratio} |")

    ours1, torch1 = pick("ours-cli", "mnist-1t"), pick("pytorch", "mnist-1t")
    row("native, 1 thread, MNIST CNN", ours1, torch1, "PyTorch 1 thread")
    row("native, all threads, MNIST CNN", pick("ours-cli", "mnist-all"), pick("pytorch", "mnist-all"), "PyTorch all threads")
    row("native, 1 thread, CIFAR-10 cifar_cnn", pick("ours-cli", "cifar-1t"), pick("pytorch", "cifar-1t"), "PyTorch 1 thread")
    row("native, all threads, CIFAR-10 cifar_cnn", pick("ours-cli", "cifar-all"), pick("pytorch", "cifar-all"), "PyTorch all threads")
    page_cpu = [r for r in pick(what="lab", flags="cpu") if "detect=" not in r["query"]]
    row("browser CPU", page_cpu, pick(what="tfjs", query_has="backend=wasm"), "TF.js wasm+SIMD")
    row("browser CPU vs our native CLI", page_cpu, ours1, "our CLI, 1 thread")
    gpu = pick(what="lab", flags="gpu")
    row("browser WebGPU (SwiftShader)", gpu, pick(what="tfjs", query_has="backend=webgpu"), "TF.js WebGPU")
    print("\n".join(lines))

    if ours1 or torch1:
        print(f"\nMNIST, 1 thread, per seed: ours CA {pct(ours1, 'CA')} %, ASR {pct(ours1, 'ASR')} %; "
              f"PyTorch CA {pct(torch1, 'CA')} %, ASR {pct(torch1, 'ASR')} %")
    for r in gpu:
        runs = r.get("runs", [])
        if runs:
            print("WebGPU page, time outside the run's stages (device choice, warm-up) per run in one tab: "
                  + ", ".join(f"{x['outside_s']:.1f} s" for x in runs))
    loop_cli = pick("ours-cli", "loop")
    loop_page = [r for r in pick(what="lab", flags="cpu") if "detect=" in r["query"]]
    if loop_cli:
        s = loop_cli[0]["seconds"]
        print(f"whole default loop natively: {s['total']:.1f} s, {s['total'] / s['train']:.2f}× training alone ({s['train']:.1f} s)")
        if loop_page and loop_page[0].get("runs"):
            w = loop_page[0]["runs"][0]["seconds"]["total"]
            print(f"whole default loop in the page on the CPU: {w:.1f} s, {w / s['total']:.2f}× the native time")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
