"""Chapter 1 in PyTorch: the 2-4-1 sigmoid network of xor.cpp, in float64.

    x (2) -> h = sigmoid(x W1 + b1) (4) -> yhat = sigmoid(h W2 + b2) (1)
    L = (y - yhat)^2 / 2, one sample at a time

xor.cpp takes one SGD step per sample, p <- p - lr * dL/dp (its update adds
lr * delta with delta = -dL/dz), the four samples in order, lr = 0.01 as a
float widened to double. An epoch is four steps.

    /usr/bin/python3 tests/reference/xor.py [--epochs 1000 --lr 0.01]

trains it from PyTorch's own random start (uniform in +-0.5, as xor.cpp) as a
peer; check() follows ./xor step by step.
"""

import argparse
import os

import torch

import common

NAME = "xor"
X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
Y = torch.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=torch.float64)
LR = common.f32(0.01)
SHAPES = {"W1": (2, 4), "b1": (4,), "W2": (4, 1), "b2": (1,)}


def forward(p, x):  # x: (2) -> yhat (1)
    h = torch.sigmoid(x @ p["W1"] + p["b1"])  # (4)
    return torch.sigmoid(h @ p["W2"] + p["b2"])  # (1)


def epoch(p, lr):
    """Four steps, one per sample; returns the epoch's error as xor.cpp prints
    it: the mean over the samples of (y - yhat)^2, each before its own step."""
    total = 0.0
    for x, y in zip(X, Y):
        yhat = forward(p, x)
        loss = 0.5 * ((y - yhat) ** 2).sum()
        total += 2 * common.sgd(loss, p, lr)
    return total / 4


def read(path):
    """xor --save: W1, b1, W2, b2, one number a line."""
    with open(path) as f:
        flat = torch.tensor([float(line) for line in f], dtype=torch.float64)
    out, off = {}, 0
    for name, shape in SHAPES.items():
        n = 1
        for s in shape:
            n *= s
        out[name] = flat[off:off + n].reshape(shape)
        off += n
    if off != len(flat):
        raise ValueError(f"{path}: {len(flat)} numbers, expected {off}")
    return out


def accuracy(p):
    with torch.no_grad():
        return 100.0 * sum(int((forward(p, x) > 0.5) == (y > 0.5)) for x, y in zip(X, Y)) / 4


def check(prog, tmp):
    """After 1, 5 and 1000 epochs (4, 20, 4000 steps): every parameter, its
    change, the printed error of every epoch, and the accuracy. Both sides
    compute in float64, so the tolerance is 1e-10: rounding differences of
    ~1e-16 per operation, grown over 4000 dependent steps."""
    rep = common.Report(NAME)
    saved = {}
    for n in (0, 1, 5, 1000):
        path = os.path.join(tmp, f"xor.{n}")
        out = common.run_ours(prog + ["--epochs", str(n), "--print-every", "1", "--save", path])
        saved[n] = read(path)
    errors = [float(line.split("Error:")[1]) for line in out.splitlines() if line.startswith("Epoch ")]
    p = common.trainable(saved[0])
    ref_errors = []
    for e in range(1, 1001):
        ref_errors.append(epoch(p, LR))
        if e in (1, 5, 1000):
            rep.params(f"after {e} epoch{'s' if e > 1 else ''} ({4 * e} steps):", saved[e], common.frozen(p),
                       saved[0], 1e-10, 1e-10)
    # xor.cpp prints the error with 6 decimals: agreement to one unit of the last.
    worst = max(abs(a - b) for a, b in zip(errors, ref_errors)) if len(errors) == len(ref_errors) else 1.0
    rep.check("printed error, epochs 1..1000, largest (absolute)", worst, 1e-6, key="loss")
    acc_ours = common.result_acc(out)
    rep.acc = (acc_ours, accuracy(common.frozen(p)))
    rep.check(f"accuracy after 1000 epochs {acc_ours:.0f}% vs {rep.acc[1]:.0f}% (points)", abs(acc_ours - rep.acc[1]),
              0)
    return rep


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1000000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    p = common.trainable({k: (torch.rand(s, dtype=torch.float64) - 0.5) for k, s in SHAPES.items()})
    t0 = common.now()
    for _ in range(args.epochs):
        epoch(p, common.f32(args.lr))
    train_s = common.now() - t0
    print(f"RESULT model=xor epochs={args.epochs} lr={args.lr:g} threads=1 seed={args.seed} "
          f"train_s={train_s:.3f} acc={accuracy(common.frozen(p)):.2f}")
