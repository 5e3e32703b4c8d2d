#!/usr/bin/env python3
"""Cross-check of the hidden-trigger attack (Saha et al., AAAI 2020) on MNIST in plain PyTorch, outside the lab.

The transfer setting of the lab's `attack=hidden_trigger`: a base model (the reference CNN, pytorch_badnets.Net)
is trained for 2 epochs on the clean training images; 800 class-0 images become poisons, each perturbed within
ε (L∞, 100 signed-gradient steps of ε/10) so that its penultimate features (the 128-d dense layer after ReLU)
collide with those of a random class-1 training image carrying a 5×5 patch at rows/cols 22..26; the victim
fine-tunes only the last layer of the base for 5 epochs (Adam 1e-3, batch 64) on the training set with the
poisons in it. ASR = share of patched class-1 test images called 0.

Usage (the benchmark's venv, data from prep_data.py):
  python pytorch_hidden_trigger.py EPSILON [--steps 100] [--patch random|white] [--seeds 0 1 2]
Prints one JSON line per seed, with the mean feature distance before and after the collision.
"""
import argparse, copy, json, os, sys
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prep_data import ROOT, make_split  # noqa: E402
from pytorch_badnets import Net, predict, to_t  # noqa: E402
from pytorch_train import train  # noqa: E402


def features(m, x):
    x = F.max_pool2d(F.relu(m.c1(x)), 2)
    x = F.max_pool2d(F.relu(m.c2(x)), 2)
    return F.relu(m.f1(x.flatten(1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("epsilon", type=float, help="L-inf budget in grey levels of 255")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--patch", choices=["random", "white"], default="random")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args()
    z = np.load(os.path.join(ROOT, "mnist.npz"))
    s = make_split(z["x"], z["y"], rho=0)
    tx, ty = s["train_x"], s["train_y"]
    x_all, y_all = to_t(tx), torch.from_numpy(ty.astype(np.int64))
    for seed in a.seeds:
        rs = np.random.RandomState(seed)
        patch = rs.randint(0, 256, (5, 5)).astype(np.uint8) if a.patch == "random" else np.full((5, 5), 255, np.uint8)

        def patched(x):
            x = x.copy()
            x[..., 22:27, 22:27] = patch
            return x

        torch.manual_seed(seed)
        base = Net()
        train(base, x_all, y_all, 2, base.parameters(), seed)
        base.eval()
        poisons = rs.choice(np.where(ty == 0)[0], 800, replace=False)
        partners = rs.choice(np.where(ty == 1)[0], len(poisons))
        goal = features(base, to_t(patched(tx[partners]))).detach()
        x0 = to_t(tx[poisons])
        x, eps = x0.clone(), a.epsilon / 255
        before = (features(base, x0) - goal).norm(dim=1).mean().item()
        for _ in range(a.steps):
            x.requires_grad_(True)
            g, = torch.autograd.grad((features(base, x) - goal).pow(2).sum(), x)
            x = (x.detach() - eps / 10 * g.sign()).clamp(x0 - eps, x0 + eps).clamp(0, 1)
        after = (features(base, x) - goal).norm(dim=1).mean().item()
        x_train = x_all.clone()
        x_train[torch.from_numpy(poisons)] = x
        victim = copy.deepcopy(base)
        victim.train()
        train(victim, x_train, y_all, 5, victim.f2.parameters(), seed)
        te_x, te_y = s["test_x"], s["test_y"]
        ca = (predict(victim, to_t(te_x)) == torch.from_numpy(te_y.astype(np.int64))).float().mean().item()
        asr = (predict(victim, to_t(patched(te_x[te_y == 1]))) == 0).float().mean().item()
        print(json.dumps(dict(seed=seed, epsilon=a.epsilon, steps=a.steps, patch=a.patch, dist_before=round(before, 2),
                              dist_after=round(after, 2), CA=round(ca, 4), ASR=round(asr, 4))), flush=True)


if __name__ == "__main__":
    main()
