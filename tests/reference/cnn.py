"""Chapter 3 in PyTorch: the CNN of cnn.cpp.

    x (B, 1, 28, 28) -> z = conv_w * x + conv_b, 8 filters 3x3, zero padding 1 (B, 8, 28, 28)
      -> a = relu(z) -> pooled = 2x2 max-pool (B, 8, 14, 14), flattened (B, 1568)
      -> logits = pooled fc_w^T + fc_b (B, 10)
    L = mean over the batch of -log softmax(logits)_y

cnn.cpp's "convolution", like PyTorch's conv2d, is a cross-correlation, and
its max-pool, like PyTorch's, sends the gradient to the first largest of the
four. The original clamps the loss's log at 1e-9, which changes the printed
loss only, never the gradient. One SGD step: p <- p - lr * dL/dp.

    /usr/bin/python3 tests/reference/cnn.py [--epochs 3 --batch 32 --lr 0.01]

trains it from PyTorch's own random start (the same Xavier scale) as a peer
for make bench; check.py uses the functions below to follow ./cnn step by step.
"""

import types

import torch
import torch.nn.functional as F

import common

NAME = "cnn"
C, K, CLASSES, FC_IN = 8, 3, 10, 8 * 14 * 14
DEFAULTS = types.SimpleNamespace(epochs=3, batch=32, lr=common.f32(0.01))


def forward(p, x):  # x: (B, 784) -> logits (B, 10)
    img = x.reshape(-1, 1, 28, 28)  # (B, 1, 28, 28)
    z = F.conv2d(img, p["conv_w"].reshape(C, 1, K, K), p["conv_b"], padding=1)  # (B, 8, 28, 28)
    pooled = F.max_pool2d(torch.relu(z), 2)  # (B, 8, 14, 14)
    return pooled.flatten(1) @ p["fc_w"].T + p["fc_b"]  # (B, 10); fc_w: (10, 1568)


def sgd_step(p, x, y, lr):
    """One step on the batch (x, y): mean cross-entropy of `forward`, plain SGD (common.sgd)."""
    return common.sgd(F.cross_entropy(forward(p, x), y), p, lr)


def lr_at(step, total, cfg):
    return cfg.lr  # constant


def read(path):
    t = common.read_model(path, "cnn")
    return {"conv_w": t["conv_w"], "conv_b": t["conv_b"], "fc_w": t["fc_w"], "fc_b": t["fc_b"]}


def init_draws(params):
    """Random numbers cnn.cpp drew before its first shuffle: conv_w, then fc_w."""
    return C * K * K + CLASSES * FC_IN


def init():
    """PyTorch's own start, at cnn.cpp's scale: Xavier-uniform weights, zero biases."""
    return {"conv_w": common.xavier(K * K, K * K * C, (C, K, K)), "conv_b": torch.zeros(C),
            "fc_w": common.xavier(FC_IN, CLASSES, (CLASSES, FC_IN)), "fc_b": torch.zeros(CLASSES)}


if __name__ == "__main__":
    args = common.peer_args(__doc__.splitlines()[0], DEFAULTS.epochs, DEFAULTS.batch, DEFAULTS.lr)
    train_s, acc = common.peer(__import__(__name__), args, init(), common.load_mnist())
    common.print_result(NAME, args, train_s, acc)
