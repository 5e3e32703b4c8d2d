"""Trunk post-build hook: ships CIFAR-10 with the site when the build finds it.

Looks in $BACKDOOR_LAB_CIFAR_DIR (default: ../shared/data/cifar10 beside the repository) for CIFAR-format
records: train_subset.bin + test_subset.bin, or the official data_batch_*.bin + test_batch.bin. When found,
they land in dist/data/cifar10/{train,test}.bin and the page offers CIFAR-10 without an upload; when not,
the page asks the user for the official archive. The data is never committed, only copied into dist/.
"""

import glob
import os
import shutil
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
src = os.environ.get("BACKDOOR_LAB_CIFAR_DIR", os.path.join(root, "..", "shared", "data", "cifar10"))
out = os.path.join(os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist"), "data", "cifar10")

RECORD = 3073
pairs = [
    ([os.path.join(src, "train_subset.bin")], [os.path.join(src, "test_subset.bin")]),
    (sorted(glob.glob(os.path.join(src, "data_batch_*.bin"))), [os.path.join(src, "test_batch.bin")]),
    (sorted(glob.glob(os.path.join(src, "cifar-10-batches-bin", "data_batch_*.bin"))),
     [os.path.join(src, "cifar-10-batches-bin", "test_batch.bin")]),
]
for train, test in pairs:
    files = train + test
    if train and all(os.path.isfile(f) for f in files):
        bad = [f for f in files if os.path.getsize(f) % RECORD]
        if bad:
            sys.exit(f"stage_cifar.py: {bad[0]} is not a whole number of CIFAR-10 records ({RECORD} bytes each)")
        os.makedirs(out, exist_ok=True)
        for name, parts in (("train.bin", train), ("test.bin", test)):
            with open(os.path.join(out, name), "wb") as dst:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, dst)
        print(f"stage_cifar.py: shipping CIFAR-10 from {src}")
        break
else:
    print(f"stage_cifar.py: no CIFAR-10 records in {src}; the page will ask users for the official archive")
