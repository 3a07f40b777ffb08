"""What the four PyTorch references share (tests/reference/).

Each reference (xor.py, mlp.py, cnn.py, attention.py) writes its network in
PyTorch with the chapter's names and shapes, and is used two ways:

  check: our program writes its initial parameters (--steps 0 --save, xor:
         --epochs 0 --save), the reference loads them, both take the same
         batches, and after 1 and after 20 SGD steps the losses and every
         parameter must agree; then one epoch each, test accuracies side by
         side. check.py runs the four (make check-torch).
  peer:  `python3 tests/reference/mlp.py --epochs 10 ...` trains from PyTorch's
         own random start and prints a RESULT line, for make bench.

This module holds what is not a model: our random generator and shuffle
(re-implemented from common.hpp, a second, independent check of them), MNIST
and our model files, running our programs, and the comparison.
"""

import argparse
import gzip
import math
import os
import struct
import subprocess
import sys
import time
import zlib

import torch

# ---------------------------------------------------------------------------
# common.hpp's generator: xorshift64 (13, 7, 17), the high 32 bits per draw.

MASK64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        self.state = seed if seed != 0 else 0x9E3779B97F4A7C15

    def next_u32(self):
        x = self.state
        x ^= (x << 13) & MASK64
        x ^= x >> 7
        x ^= (x << 17) & MASK64
        self.state = x
        return x >> 32

    def skip(self, n):
        """Advance past n draws: those our program spent on initialisation."""
        for _ in range(n):
            self.next_u32()


def shuffle(rng, v):
    """common.hpp's nn::shuffle: Fisher-Yates from the end, j = u32 % (i + 1)."""
    for i in range(len(v) - 1, 0, -1):
        j = rng.next_u32() % (i + 1)
        v[i], v[j] = v[j], v[i]


def batches(order, batch):
    """The index lists of one epoch's batches, in order; the last may be short."""
    return [order[i:i + batch] for i in range(0, len(order), batch)]


# ---------------------------------------------------------------------------
# MNIST: the IDX files, gzip'd or not, under either naming convention, from
# $MNIST_DIR, else data/ (as common.hpp's find_mnist_file).

def data_dir():
    return os.environ.get("MNIST_DIR") or "data"


def _find(d, stem, kind):
    for name in (f"{stem}-{kind}", f"{stem}-{kind}.gz", f"{stem}.{kind}", f"{stem}.{kind}.gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise FileNotFoundError(f"{d}: no {stem} file (run `make data` or set MNIST_DIR)")


def _read_idx(path, magic, item):
    with open(path, "rb") as f:
        b = f.read()
    if b[:2] == b"\x1f\x8b":
        b = gzip.decompress(b)
    header = 16 if magic == 0x803 else 8
    m, n = struct.unpack(">II", b[:8])
    if m != magic or len(b) != header + n * item:
        raise ValueError(f"{path}: not an IDX file of {n} items of {item} bytes")
    values = torch.frombuffer(bytearray(b[header:]), dtype=torch.uint8)
    return values.reshape(n, item) if item > 1 else values.long()


# common.hpp's pixel(v) = float(v) / 255.0f, a correctly rounded float32
# division, as a table of 256 values: the float64 quotient rounded to float32
# is that same float (double rounding is harmless for a quotient, since 53 >=
# 2 * 24 + 2 bits), and a table keeps torch from multiplying by 1/255 instead.
PIXEL = torch.tensor([v / 255.0 for v in range(256)], dtype=torch.float64).float()


def load_mnist(d=None):
    """(train_x, train_y, test_x, test_y): x (n, 784) float32 in [0, 1], y (n) int64."""
    d = d or data_dir()
    out = []
    for prefix in ("train", "t10k"):
        px = _read_idx(_find(d, f"{prefix}-images", "idx3-ubyte"), 0x803, 784)
        out += [PIXEL[px.long()], _read_idx(_find(d, f"{prefix}-labels", "idx1-ubyte"), 0x801, 1)]
    return tuple(out)


# ---------------------------------------------------------------------------
# Our model files.

def read_mlp_model(path):
    """mlp.cpp's file (the original's): int32 sizes IN, H, OUT, then W1 (IN, H),
    b1 (H), W2 (H, OUT), b2 (OUT) as float64 (floats widened, so exact)."""
    with open(path, "rb") as f:
        b = f.read()
    n_in, h, n_out = struct.unpack("<3i", b[:12])
    shapes = {"W1": (n_in, h), "b1": (h,), "W2": (h, n_out), "b2": (n_out,)}
    if len(b) != 12 + 8 * sum(math.prod(s) for s in shapes.values()):
        raise ValueError(f"{path}: {len(b)} bytes, not an MLP model of {n_in}-{h}-{n_out}")
    flat = torch.frombuffer(bytearray(b[12:]), dtype=torch.float64)
    out, off = {}, 0
    for name, shape in shapes.items():
        out[name] = flat[off:off + math.prod(shape)].reshape(shape).float()
        off += math.prod(shape)
    return out


def read_model(path, model):
    """common.hpp's format: "NNCPPMDL", version 1, the model's name, the tensor
    count, each tensor's name and four dims, the float32 data, a CRC-32."""
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"NNCPPMDL" or struct.unpack("<I", b[8:12])[0] != 1:
        raise ValueError(f"{path}: not a model file of this project, version 1")
    if b[12:28].rstrip(b"\0").decode() != model:
        raise ValueError(f"{path}: not a '{model}' model")
    if zlib.crc32(b[:-4]) != struct.unpack("<I", b[-4:])[0]:
        raise ValueError(f"{path}: checksum mismatch")
    count = struct.unpack("<I", b[28:32])[0]
    entries = []
    for i in range(count):
        e = b[32 + 32 * i:64 + 32 * i]
        entries.append((e[:16].rstrip(b"\0").decode(), struct.unpack("<4I", e[16:])))
    off = 32 + 32 * count
    out = {}
    for name, dims in entries:
        n = math.prod(dims)
        out[name] = torch.frombuffer(bytearray(b[off:off + 4 * n]), dtype=torch.float32).reshape(
            [d for d in dims if d != 1] or [1]).clone()
        off += 4 * n
    if off + 4 != len(b):
        raise ValueError(f"{path}: {len(b)} bytes, expected {off + 4}")
    return out


# ---------------------------------------------------------------------------
# Running our programs.

def run_ours(cmd):
    """Run one of our programs; its stdout, or an exception naming the command."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def step_losses(stdout):
    """The mean batch losses our program prints under --steps ("Step k | loss=x")."""
    return [float(line.split("loss=")[1]) for line in stdout.splitlines() if line.startswith("Step ")]


def result_acc(stdout):
    """The test accuracy of our program's RESULT line."""
    line = [l for l in stdout.splitlines() if l.startswith("RESULT ")][-1]
    return float(dict(kv.split("=") for kv in line.split()[1:])["acc"])


# ---------------------------------------------------------------------------
# Comparing. A tensor's difference is relative to the tensor's scale,
#   rel(ours, ref) = max_i |ours_i - ref_i| / max_i |ref_i|,
# computed in float64: element-wise relative errors mean nothing for entries
# near zero, and a whole tensor off by its own size is what a wrong gradient
# looks like. Besides the parameters themselves, the check compares what the
# steps changed, p_k - p_0: after a few steps the parameters still hold their
# initial values almost unchanged, so a wrong update would hide in them.

def rel(ours, ref):
    ours, ref = ours.double(), ref.double()
    scale = ref.abs().max().item()
    return (ours - ref).abs().max().item() / (scale if scale > 0 else 1.0)


class Report:
    """Collects the checks of one model; prints one line per check."""

    def __init__(self, model, quiet=False):
        self.model, self.failures, self.worst, self.quiet = model, 0, {}, quiet

    def check(self, what, value, tol, key=None):
        ok = value <= tol
        self.failures += not ok
        if key:
            self.worst[key] = max(self.worst.get(key, 0.0), value)
        if not (ok and self.quiet):
            print(f"  {self.model:9s} {what:46s} {value:10.3g}  (tolerance {tol:g}) {'ok' if ok else 'FAILED'}")
        return ok

    def params(self, label, ours, ref, init, tol_param, tol_update):
        """Every tensor: the parameters, and their change since the start."""
        for name in ref:
            self.check(f"{label} {name}", rel(ours[name], ref[name]), tol_param, key=f"{label} params")
            self.check(f"{label} {name} - initial", rel(ours[name] - init[name], ref[name] - init[name]),
                       tol_update, key=f"{label} updates")

    def losses(self, ours, ref, tol):
        if len(ours) != len(ref):
            self.check(f"losses: {len(ours)} steps printed, {len(ref)} taken", math.inf, tol)
            return
        worst = max(abs(a - b) / abs(b) for a, b in zip(ours, ref))
        self.check(f"loss, steps 1..{len(ref)}, largest", worst, tol, key="loss")


# ---------------------------------------------------------------------------
# Peer mode (make bench): flags as our programs', one RESULT line.

def peer_args(description, epochs, batch, lr, extra=()):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=-1, help="stop after N SGD steps (-1: no limit), for timing trials")
    for flag, kw in extra:
        ap.add_argument(flag, **kw)
    args = ap.parse_args()
    args.lr = f32(args.lr)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return args


def xavier(fan_in, fan_out, shape):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)), our programs' initial scale."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape) * 2 - 1) * limit


def print_result(model, args, train_s, acc, **extra):
    more = "".join(f" {k}={v}" for k, v in extra.items())
    print(f"RESULT model={model} epochs={args.epochs} batch={args.batch} lr={args.lr:g}{more} "
          f"threads={args.threads} openblas_threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')} "
          f"seed={args.seed} train_s={train_s:.3f} acc={acc:.2f}")
    sys.stdout.flush()


def now():
    return time.perf_counter()


def f32(x):
    """x rounded to float32, as our programs hold --lr."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def peer(m, args, params, data):
    """Train from params for args.epochs (or args.steps), batches from
    torch.randperm, then test; print the RESULT line (train_s: training only)."""
    train_x, train_y, test_x, test_y = data
    p, n = trainable(params), len(train_y)
    per_epoch = (n + args.batch - 1) // args.batch
    step, t0 = 0, now()
    for epoch in range(args.epochs):
        order = torch.randperm(n)
        for b in range(per_epoch):
            if step == args.steps:
                break
            idx = order[b * args.batch:(b + 1) * args.batch]
            m.sgd_step(p, train_x[idx], train_y[idx], m.lr_at(step, args.epochs * per_epoch, args))
            step += 1
    train_s = now() - t0
    with torch.no_grad():
        acc = 100.0 * (m.forward(frozen(p), test_x).argmax(1) == test_y).double().mean().item()
    return train_s, acc


# ---------------------------------------------------------------------------
# The check of an MNIST model, the same for the three: run ours for 0, 1 and
# 20 steps, take the same 20 steps here, compare; then one epoch each.

def sgd(loss, p, lr):
    """The step every MNIST program takes: gradients of `loss` by autograd, then
    each parameter t -= lr * dt; returns the loss as a Python float."""
    for t in p.values():
        t.grad = None
    loss.backward()
    with torch.no_grad():
        for t in p.values():
            t -= lr * t.grad
    return loss.item()


def trainable(params):
    return {k: v.detach().clone().requires_grad_() for k, v in params.items()}


def frozen(params):
    return {k: v.detach() for k, v in params.items()}


def epoch_batches(n_train, seed, draws, batch):
    """Our program's first epoch: the generator, past the initialisation's
    draws, shuffles 0..n-1; batches are consecutive slices of that order."""
    rng = Rng(seed)
    rng.skip(draws)
    order = list(range(n_train))
    shuffle(rng, order)
    return [torch.tensor(b) for b in batches(order, batch)]


def check_mnist(m, cmd, data, tmp, tol, margin, one_epoch=True, quiet=False):
    """m: the model's module (NAME, DEFAULTS, read, init_draws, lr_at, sgd_step,
    forward); cmd: our program and its flags; tol: tolerances by key; margin:
    for the one-epoch accuracies, in percentage points."""
    rep = Report(m.NAME, quiet)
    train_x, train_y, test_x, test_y = data
    saved, out = {}, ""
    for n in (0, 1, 20):
        path = os.path.join(tmp, f"{m.NAME}.{n}")
        out = run_ours(cmd + ["--steps", str(n), "--save", path, "--log", "none"])
        saved[n] = m.read(path)
    init = saved[0]
    order = epoch_batches(len(train_y), 1, m.init_draws(init), m.DEFAULTS.batch)
    p, losses = trainable(init), []
    for k in range(20):
        lr = m.lr_at(k, m.DEFAULTS.epochs * len(order), m.DEFAULTS)
        losses.append(m.sgd_step(p, train_x[order[k]], train_y[order[k]], lr))
        if k + 1 in (1, 20):
            rep.params(f"after {k + 1} step{'s' if k else ''}:", saved[k + 1], frozen(p), init,
                       tol[f"param{k + 1}"], tol[f"update{k + 1}"])
    rep.losses(step_losses(out), losses, tol["loss"])
    with torch.no_grad():  # both parameter sets through the same forward pass
        rep.check("logits of 1000 test images, ours vs reference params after 20 steps",
                  rel(m.forward(saved[20], test_x[:1000]), m.forward(frozen(p), test_x[:1000])), tol["logits"],
                  key="logits")
    if not one_epoch:
        return rep
    # One epoch each, from the same start, the same batches.
    t0 = now()
    acc_ours = result_acc(run_ours(cmd + ["--epochs", "1", "--save", os.path.join(tmp, f"{m.NAME}.e1"),
                                          "--log", "none"]))
    t1 = now()
    p = trainable(init)
    for k, idx in enumerate(order):
        m.sgd_step(p, train_x[idx], train_y[idx], m.lr_at(k, len(order), m.DEFAULTS))
    with torch.no_grad():
        acc_ref = 100.0 * (m.forward(frozen(p), test_x).argmax(1) == test_y).double().mean().item()
    t2 = now()
    rep.acc = (acc_ours, acc_ref)
    rep.check(f"one epoch: test accuracy {acc_ours:.2f}% vs {acc_ref:.2f}% (points)", abs(acc_ours - acc_ref),
              margin)
    print(f"  {m.NAME:9s} one epoch took {t1 - t0:.1f} s here (ours, whole process), {t2 - t1:.1f} s in PyTorch")
    return rep
