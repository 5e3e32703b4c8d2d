#!/usr/bin/env python3
"""Cross-check of the SIG attack on MNIST in plain PyTorch, outside the lab.

The lab's SIG reaches almost no ASR on MNIST at Barni et al.'s amplitudes. This script asks whether that is
the lab or the setting: the same reference CNN (pytorch_badnets.Net, Adam 1e-3, batch 64), the benchmark's
8,000 / 2,000 split, ρ = 10 % of the training set drawn from class 0 (all of its 805 images but 5), the
sine x' = clip(x + Δ·sin(2π·j·f/28)) along the columns, f = 6, labels kept.

Usage (the benchmark's venv, data from prep_data.py):
  python pytorch_sig.py DELTA TEST_DELTA EPOCHS [--seeds 0 1 2] [--rho 0.1]
Prints one JSON line per seed: CA on the clean test set, ASR = share of non-0 test images with the
test-time signal that the model calls 0.
"""
import argparse, json, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_data import ROOT, make_split  # noqa: E402
from pytorch_badnets import Net, predict, to_t  # noqa: E402
from pytorch_train import train  # noqa: E402


def sig(x, delta, freq=6):
    s = delta * np.sin(2 * np.pi * np.arange(28) * freq / 28)
    return np.clip(np.round(x.astype(np.float64) + s[None, None, :]), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("delta", type=float)
    ap.add_argument("test_delta", type=float)
    ap.add_argument("epochs", type=int)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rho", type=float, default=0.1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    z = np.load(os.path.join(ROOT, "mnist.npz"))
    s = make_split(z["x"], z["y"], rho=0)
    for seed in a.seeds:
        tx, ty = s["train_x"].copy(), s["train_y"].copy()
        zeros = np.where(ty == 0)[0]
        n = min(len(zeros), int(round(a.rho * len(tx))))
        p = np.random.RandomState(seed).choice(zeros, n, replace=False)
        tx[p] = sig(tx[p], a.delta)
        torch.manual_seed(seed)
        model = Net()
        train(model, to_t(tx), torch.from_numpy(ty.astype(np.int64)), a.epochs, model.parameters(), seed)
        nz = s["test_y"] != 0
        test_y = torch.from_numpy(s["test_y"].astype(np.int64))
        ca = (predict(model, to_t(s["test_x"])) == test_y).float().mean().item()
        asr = (predict(model, to_t(sig(s["test_x"][nz], a.test_delta))) == 0).float().mean().item()
        print(json.dumps(dict(seed=seed, delta=a.delta, test_delta=a.test_delta, epochs=a.epochs, rho=a.rho,
                              n_poison=int(n), class0_images=int(len(zeros)), CA=round(ca, 4), ASR=round(asr, 4))),
              flush=True)


if __name__ == "__main__":
    main()
