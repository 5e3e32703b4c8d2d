#!/usr/bin/env python3
"""Re-measures the figures of docs/measured.md and the issues with the native CLI: the reference experiment over
several seeds with every detector, clean models under Neural Cleanse, Activation Clustering and retraining
at rho = 5 %, every repair, and the CIFAR-10 subset. Writes each REPORT.json to --out and prints Markdown
tables built from them (nothing here is typed in by hand).

    python3 scripts/measure.py --suite detect,clean,rho5,repair --seeds 0,1,2,3,4 --out /tmp/measure
    python3 scripts/measure.py --suite cifar --data-dir ../shared/data --out /tmp/measure

Runs are independent; --jobs 2 runs two at a time (timings then share the machine's cores, so compare
ratios within a run, not seconds across runs).
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DETECTORS = "nc,ac,ss,strip,loss"
REPAIRS = "fp,ft,retrain,abl,nc_unlearn,distill,strip_filter"

# suite -> (link without the seed, which seeds it uses by default)
SUITES = {
    "detect": f"v=1&detect={DETECTORS}",
    "clean": "v=1&attack=none&detect=nc",
    "rho5": "v=1&rate=0.05&detect=ac,ss,loss&repair=retrain&retrain_by=ac",
    "repair": f"v=1&repair={REPAIRS}",
    "cifar": f"v=1&data=cifar10&detect=nc,strip,loss&repair={REPAIRS}",
}


def cli_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/backdoor-lab/target"))
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "backdoor-lab"], cwd=ROOT, check=True,
                   env={**os.environ, "CARGO_TARGET_DIR": str(target)})
    return target / "release" / "backdoor-lab"


def run(binary, link, out, data_dir):
    if out.exists():
        return json.loads(out.read_text())
    cmd = [str(binary), "run", "--link", link, "--out", str(out), "--quiet"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


pct = lambda x: f"{100 * x:.1f}"
f2 = lambda x: "—" if x is None else f"{x:.2f}"
f3 = lambda x: "—" if x is None else f"{x:.3f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def target_index(r):
    return r["spec"]["attack"]["target_label"]


def report_models(name, reports):
    rows = [[name, s, pct(r["final"]["clean_acc"]), pct(r["final"]["asr"]), pct(r["final"]["robust_acc"]),
             f"{r['seconds']['train']:.1f}", f"{r['train_samples_per_second']:.0f}"] for s, r in reports]
    return table(["suite", "seed", "CA %", "ASR %", "RA %", "train s", "samples/s"], rows)


def report_detect(name, reports):
    rows = []
    for s, r in reports:
        d, t = r["detect"], r["seconds"]["train"]
        nc, ac, ss, strip, loss = (d.get(k) for k in ("nc", "ac", "ss", "strip", "loss"))
        rows.append([
            name, s,
            "—" if nc is None else f"{nc['flagged_classes']} / {nc['anomaly_index'][target_index(r)]:.2f} / "
                                   f"{max(nc['anomaly_index']):.2f}",
            "—" if strip is None else f"{f3(strip['auroc'])} / {pct(strip['far_at_frr_1pct'])}",
            "—" if ac is None else f"{f2(ac['f1'])} ({ac['flagged']})",
            "—" if ss is None else f"{f2(ss['f1'])} / {f2(ss['in_class_auroc'])}",
            "—" if loss is None else f"{f2(loss['precision'])} ({loss['flagged']})",
            f"{d['seconds']:.1f} / {t:.1f} = {d['seconds'] / t:.2f}x",
        ])
    return table(["suite", "seed", "NC flagged / index of target / max index", "STRIP AUROC / FAR@FRR1 %",
                  "AC F1 (flagged)", "SS F1 / in-class AUROC", "loss precision (flagged)",
                  "detect s / train s"], rows)


def report_repair(name, reports):
    rows = []
    for s, r in reports:
        rep = r["repair"]
        b = rep["before"]
        rows.append([name, s, "before", pct(b["clean_acc"]), pct(b["asr"]), pct(b["robust_acc"]), "—", "—", ""])
        for k in REPAIRS.split(","):
            e = rep.get(k)
            if e is None:
                continue
            extra = ""
            if k == "fp":
                extra = (f"pruned {e['pruned']}/{e['units']}: CA {pct(e['pruned_clean_acc'])} ASR "
                         f"{pct(e['pruned_asr'])} before fine-tuning")
            elif k == "retrain":
                extra = f"removed {e.get('removed', '?')}, of them poisoned {e.get('removed_poisoned', '?')}"
            elif k == "abl":
                extra = f"isolated {e['isolated']}, poisoned {e['isolated_poisoned']}"
            rows.append([name, s, k, pct(e["clean_acc"]), pct(e["asr"]), pct(e["robust_acc"]), f2(e["der"]),
                         f"{e['seconds']:.1f}", extra])
    return table(["suite", "seed", "repair", "CA %", "ASR %", "RA %", "DER", "s", "detail"], rows)


def report_fp_curve(name, reports):
    out = []
    for s, r in reports:
        fp = r["repair"].get("fp")
        if fp is None:
            continue
        pts = fp["curve"]
        step = max(1, len(pts) // 8)
        shown = pts[::step] + ([pts[-1]] if (len(pts) - 1) % step else [])
        out.append(f"{name} seed {s}, fine-pruning curve (pruned fraction: CA % / ASR %): " +
                   ", ".join(f"{p['fraction']:.2f}: {pct(p['clean_acc'])}/{pct(p['asr'])}" for p in shown))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="detect,clean,rho5,repair")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="measure-out")
    ap.add_argument("--data-dir")
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    suites = a.suite.split(",")
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        sys.exit(f"unknown suite {unknown}; choose from {list(SUITES)}")
    seeds = [int(s) for s in a.seeds.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    binary = cli_binary()
    jobs = [(name, seed) for name in suites for seed in seeds]

    def one(job):
        name, seed = job
        link = f"{SUITES[name]}&seed={seed}"
        report = run(binary, link, out / f"{name}-{seed}.json", a.data_dir)
        print(f"done {name} seed {seed}", file=sys.stderr, flush=True)
        return report

    with ThreadPoolExecutor(a.jobs) as pool:
        reports = dict(zip(jobs, pool.map(one, jobs)))
    for name in suites:
        rs = [(s, reports[(name, s)]) for s in seeds]
        print(f"\n### {name}: `{SUITES[name]}&seed=S`\n")
        print(report_models(name, rs))
        if any(r.get("detect") for _, r in rs):
            print()
            print(report_detect(name, rs))
        if any(r.get("repair") for _, r in rs):
            print()
            print(report_repair(name, rs))
            curve = report_fp_curve(name, rs)
            if curve:
                print()
                print(curve)


if __name__ == "__main__":
    main()
