"""Chapter 4 in PyTorch: the self-attention model of attention.cpp.

    image (28, 28) -> 49 tokens of 4x4 pixels, x (B, 49, 16), row-major patches
    E = relu(x We + be + Pi)            (B, 49, D)   Pi: position vectors (49, D)
    [Q | K | V] = E Wqkv + bqkv         (B, 49, 3D)
    A = softmax over keys of Q K^T / sqrt(D)   (B, 49, 49)
    O = A V                             (B, 49, D)
    H = relu(O W1 + b1)                 (B, 49, F)
    m = mean over the tokens of H, W2 + b2    (B, D): the second layer runs on the mean token
    logits = m Wc + bc                  (B, 10)
    L = mean over the batch of -log softmax(logits)_y

One SGD step: p <- p - lr_t * dL/dp, lr_t the cosine schedule by default,
lr_t = lr (1 + cos(pi t / T)) / 2 over the run's T steps (or constant).

    /usr/bin/python3 tests/reference/attention.py [--epochs 8 --batch 32 --lr 0.1 --schedule cosine
                                                   --d-model 64 --ff 128 --pos sinusoidal]

trains it from PyTorch's own random start (the same Xavier scale, the same
sinusoidal positions) as a peer for make bench; check.py uses the functions
below to follow ./attention step by step.
"""

import math
import types

import torch
import torch.nn.functional as F

import common

NAME = "attention"
P, N, CLASSES = 16, 49, 10
DEFAULTS = types.SimpleNamespace(epochs=8, batch=32, lr=common.f32(0.1), schedule="cosine", d_model=64, ff=128,
                                 pos="sinusoidal")


def patchify(x):  # x: (B, 784) -> tokens (B, 49, 16); token t = 7 py + px, pixel 4 dy + dx
    return x.reshape(-1, 7, 4, 7, 4).permute(0, 1, 3, 2, 4).reshape(-1, N, P)


def forward(p, x):  # x: (B, 784) -> logits (B, 10)
    D = p["We"].shape[1]
    e = torch.relu(patchify(x) @ p["We"] + p["be"] + p["pos"])  # (B, 49, D)
    q, k, v = (e @ p["Wqkv"] + p["bqkv"]).split(D, dim=2)  # (B, 49, D) each
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), dim=2)  # (B, 49, 49): query i, key j
    o = a @ v  # (B, 49, D)
    h = torch.relu(o @ p["W1"] + p["b1"])  # (B, 49, F)
    m = h.mean(dim=1) @ p["W2"] + p["b2"]  # (B, D)
    return m @ p["Wc"] + p["bc"]  # (B, 10)


def sgd_step(p, x, y, lr):
    """One step on the batch (x, y): mean cross-entropy of `forward`, plain SGD (common.sgd)."""
    return common.sgd(F.cross_entropy(forward(p, x), y), p, lr)


def lr_at(step, total, cfg):
    """attention.cpp's lr_at: computed in double, held as a float."""
    if cfg.schedule == "cosine":
        return common.f32(0.5 * cfg.lr * (1.0 + math.cos(3.14159265358979323846 * step / total)))
    return cfg.lr


FILE_NAMES = {"w_patch": "We", "b_patch": "be", "pos": "pos", "w_qkv": "Wqkv", "b_qkv": "bqkv", "w_ff1": "W1",
              "b_ff1": "b1", "w_ff2": "W2", "b_ff2": "b2", "w_cls": "Wc", "b_cls": "bc"}


def read(path):
    return {FILE_NAMES[k]: v for k, v in common.read_model(path, "attention").items()}


def init_draws(params, pos="sinusoidal"):
    """Random numbers attention.cpp drew before its first shuffle: We, (random
    positions,) Wq, Wk, Wv, W1, W2, Wc."""
    D, F_ = params["W1"].shape
    return P * D + (N * D if pos == "random" else 0) + 3 * D * D + D * F_ + F_ * D + D * CLASSES


def sinusoidal(D):
    """Pi[t, d] = sin(t / 10000^(2 floor(d/2) / D)) for even d, cos for odd d, in float32."""
    t = torch.arange(N, dtype=torch.float32)[:, None]
    d = torch.arange(D)
    angle = t / torch.pow(torch.tensor(10000.0), (2 * (d // 2)).float() / D)
    return torch.where(d % 2 == 0, torch.sin(angle), torch.cos(angle))


def init(D, F_, pos):
    """PyTorch's own start, at attention.cpp's scale: Xavier-uniform weights, zero biases."""
    return {"We": common.xavier(P, D, (P, D)), "be": torch.zeros(D),
            "pos": sinusoidal(D) if pos == "sinusoidal" else (torch.rand(N, D) * 2 - 1) * 0.1,
            "Wqkv": common.xavier(D, D, (D, 3 * D)), "bqkv": torch.zeros(3 * D),
            "W1": common.xavier(D, F_, (D, F_)), "b1": torch.zeros(F_),
            "W2": common.xavier(F_, D, (F_, D)), "b2": torch.zeros(D),
            "Wc": common.xavier(D, CLASSES, (D, CLASSES)), "bc": torch.zeros(CLASSES)}


if __name__ == "__main__":
    args = common.peer_args(__doc__.splitlines()[0], DEFAULTS.epochs, DEFAULTS.batch, DEFAULTS.lr, [
        ("--schedule", dict(choices=["cosine", "constant"], default=DEFAULTS.schedule)),
        ("--d-model", dict(type=int, default=DEFAULTS.d_model)),
        ("--ff", dict(type=int, default=DEFAULTS.ff)),
        ("--pos", dict(choices=["sinusoidal", "random"], default=DEFAULTS.pos))])
    train_s, acc = common.peer(__import__(__name__), args, init(args.d_model, args.ff, args.pos),
                               common.load_mnist())
    common.print_result(NAME, args, train_s, acc, schedule=args.schedule, d_model=args.d_model, ff=args.ff,
                        pos=args.pos)
