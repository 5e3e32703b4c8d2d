"""The training loop the attack cross-checks share (pytorch_sig.py, pytorch_hidden_trigger.py): Adam 1e-3,
batch 64, softmax cross-entropy, a seeded shuffle per epoch, as in pytorch_badnets.py (a copy of the peers'
script, kept as it is)."""
import torch
import torch.nn.functional as F


def train(model, x, y, epochs, params, seed):
    """Trains `params` of `model` on (x, y) for `epochs`; the shuffle comes from `seed`."""
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
