#!/usr/bin/env python3
"""PyTorch CPU peer for the lab's CIFAR-10 network (`cifar_cnn`), on the same CIFAR-format records the lab reads.

Usage: pytorch_cifar.py --data DIR [--threads N] [--epochs E] [--seed S]
  DIR holds train_subset.bin / test_subset.bin (or data_batch_1.bin / test_batch.bin): records of 1 label byte
  + 3072 pixel bytes (CHW), the official binary format. The first 10,000 / 2,000 records are used (the lab's
  CIFAR-10 defaults), normalised with the lab's per-channel statistics.
Network (the lab's, ../shared/reference/model.py): 3 × (conv 3×3 same → ReLU → maxpool 2), 32/64/64 channels →
  flatten → 128 → ReLU → 10; Adam lr 1e-3; batch 64; float32. Clean training: throughput does not depend on labels.
Prints one JSON line: samples/s over all epochs and the best epoch, and the final clean accuracy.
"""
import argparse, json, os, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class CifarCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 4 * 4, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        for c in (self.conv1, self.conv2, self.conv3):
            x = F.max_pool2d(F.relu(c(x)), 2)
        return self.out(F.relu(self.fc(x.flatten(1))))


def records(path, n):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise SystemExit(f"{path}: {raw.size} bytes is not a whole number of 3073-byte CIFAR records")
    raw = raw.reshape(-1, 3073)[:n]
    x = torch.from_numpy(raw[:, 1:].astype(np.float32) / 255.0).reshape(-1, 3, 32, 32)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.from_numpy(raw[:, 0].astype(np.int64))


def pick(d, *names):
    for n in names:
        if os.path.exists(os.path.join(d, n)):
            return os.path.join(d, n)
    raise SystemExit(f"none of {names} in {d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch default")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    xtr, ytr = records(pick(a.data, "train_subset.bin", "data_batch_1.bin"), 10_000)
    xte, yte = records(pick(a.data, "test_subset.bin", "test_batch.bin"), 2_000)
    torch.manual_seed(a.seed)
    model = CifarCnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(a.seed)
    n, bs, times = len(xtr), 64, []
    for _ in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        ca = torch.cat([model(xte[i:i + 500]).argmax(1) for i in range(0, len(xte), 500)]).eq(yte).float().mean().item()
    print(json.dumps(dict(framework="pytorch", model="cifar_cnn", torch=torch.__version__, threads=torch.get_num_threads(),
                          epochs=a.epochs, n_train=n, epoch_s=[round(t, 3) for t in times],
                          samples_per_s=round(n * a.epochs / sum(times), 1), best_samples_per_s=round(n / min(times), 1),
                          CA=round(ca, 4))), flush=True)


if __name__ == "__main__":
    main()
