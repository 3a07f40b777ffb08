"""Chapter 2 in PyTorch: the 784-H-10 perceptron of mlp.cpp.

    x (B, 784) -> z1 = x W1 + b1 (B, H) -> h = relu(z1) -> z2 = h W2 + b2 (B, 10)
    L = mean over the batch of -log softmax(z2)_y

One SGD step is p <- p - lr * dL/dp for every parameter, the gradient of the
batch *mean* (mlp.cpp scales dz2 by 1/B). PyTorch's autograd derives it here;
mlp.cpp derives it by hand.

    /usr/bin/python3 tests/reference/mlp.py [--epochs 10 --batch 64 --lr 0.01 --hidden 512]

trains it from PyTorch's own random start (the same Xavier scale) as a peer
for make bench; check.py uses the functions below to follow ./mlp step by step.
"""

import types

import torch
import torch.nn.functional as F

import common

NAME = "mlp"
IN, OUT = 784, 10
DEFAULTS = types.SimpleNamespace(epochs=10, batch=64, lr=common.f32(0.01), hidden=512)


def forward(p, x):  # x: (B, 784) -> logits (B, 10)
    z1 = x @ p["W1"] + p["b1"]  # (B, H)
    h = torch.relu(z1)  # (B, H)
    return h @ p["W2"] + p["b2"]  # z2: (B, 10)


def sgd_step(p, x, y, lr):
    """One step on the batch (x, y): mean cross-entropy of `forward`, plain SGD (common.sgd)."""
    return common.sgd(F.cross_entropy(forward(p, x), y), p, lr)


def lr_at(step, total, cfg):
    return cfg.lr  # constant


def read(path):
    return common.read_mlp_model(path)


def init_draws(params):
    """Random numbers mlp.cpp drew before its first shuffle: W1, then W2."""
    h = params["W1"].shape[1]
    return IN * h + h * OUT


def init(hidden):
    """PyTorch's own start, at mlp.cpp's scale: Xavier-uniform weights, zero biases."""
    return {"W1": common.xavier(IN, hidden, (IN, hidden)), "b1": torch.zeros(hidden),
            "W2": common.xavier(hidden, OUT, (hidden, OUT)), "b2": torch.zeros(OUT)}


if __name__ == "__main__":
    args = common.peer_args(__doc__.splitlines()[0], DEFAULTS.epochs, DEFAULTS.batch, DEFAULTS.lr,
                            [("--hidden", dict(type=int, default=DEFAULTS.hidden))])
    train_s, acc = common.peer(__import__(__name__), args, init(args.hidden), common.load_mnist())
    common.print_result(NAME, args, train_s, acc, hidden=args.hidden)
