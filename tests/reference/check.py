"""make check-torch: our four programs against PyTorch, step for step.

    /usr/bin/python3 tests/reference/check.py [--bin DIR] [--only xor,mlp,...]
    /usr/bin/python3 tests/reference/check.py --expect-failure --mlp PROGRAM

Runs our programs from DIR (default: the project root) and the references in
this folder; prints one line per comparison and a summary; exits 1 when any
comparison is outside its tolerance. With --expect-failure it runs only the
mlp check, against PROGRAM (a build with a deliberately wrong gradient), and
exits 0 only if the check FAILS: the proof that it can.

Tolerances, and why. Everything is float32 on both sides (xor: float64), and
the two sides add the same numbers in different orders: a sum of n products
then differs by about sqrt(n) * 2^-24 of its terms' size, at most n * 2^-24
(n = 784 for the MLP's first layer, 1568 for the CNN's classifier, up to
49 * 64 * 32 in the attention head's weight gradients), a few 1e-6 relative.
 - a step's loss: one forward pass, the mean of B logs; 1e-5.
 - parameters: 1e-5 after 1 step, 1e-4 after 20. The biases start at zero,
   so their values after 1 step are lr times the gradient, with the
   gradient's rounding (a few 1e-6); the weights barely move (an update is
   a thousandth of a weight or less) and agree to about 1e-7.
 - the change p_k - p_0, i.e. the gradient, the check that matters: 1e-4
   after 1 step (the gradient's own rounding, plus the rounding of p - lr*g,
   half a float32 ulp of p, set against a change of ~1e-3 of p), 1e-3 after
   20 steps, where each step starts from parameters that already differ and
   carries the differences on (through ReLU and max-pool too, where a value
   near a kink can switch sides).
 - logits (both parameter sets through PyTorch's forward): 1e-4.
 - one epoch (938 to 1875 steps): the trajectories drift apart slowly, so
   test accuracies agree only to a fraction of a point: 0.5 points.
A wrong gradient gives a relative difference of order 1 (a flipped sign: 2).
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import common  # noqa: E402

TOL = dict(loss=1e-5, param1=1e-5, update1=1e-4, param20=1e-4, update20=1e-3, logits=1e-4)
MARGIN = 0.5  # percentage points, one epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=".", help="where our programs are")
    ap.add_argument("--only", default="xor,mlp,cnn,attention")
    ap.add_argument("--expect-failure", action="store_true")
    ap.add_argument("--mlp", help="the mlp program to check (default: BIN/mlp)")
    ap.add_argument("--skip-without-mnist", action="store_true", help="no MNIST: say so, exit 0 (make test)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # a known cost on any machine; OpenMP threads spin on a busy one
    t0 = time.time()
    models = ["mlp"] if args.expect_failure else args.only.split(",")
    try:
        data = common.load_mnist() if set(models) - {"xor"} else None
    except (OSError, ValueError) as e:
        if not args.skip_without_mnist:
            print(f"check-torch: {e}")
            return 1
        skipped = [m for m in models if m != "xor"]
        print(f"check-torch: skipped {', '.join(skipped)}{' (the wrong gradient)' if args.expect_failure else ''}: {e}")
        models = [m for m in models if m == "xor"]
        if not models:
            return 0
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            m = __import__(name)
            prog = [args.mlp or os.path.join(args.bin, "mlp")] if name == "mlp" else [os.path.join(args.bin, name)]
            try:
                if name == "xor":
                    reports.append(m.check(prog, tmp))
                else:
                    reports.append(common.check_mnist(m, prog, data, tmp, TOL, MARGIN,
                                                      one_epoch=not args.expect_failure, quiet=args.expect_failure))
            except (RuntimeError, OSError, ValueError) as e:  # our program failed, or a file is not as expected
                print(f"check-torch: {name}: {e}")
                reports.append(common.Report(name))
                reports[-1].failures = 1
    failures = sum(r.failures for r in reports)
    print(f"check-torch: {len(reports)} models, {failures} checks failed "
          f"({time.time() - t0:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} threads)")
    for r in reports:
        print(f"  {r.model:9s} largest: " + ", ".join(f"{k} {v:.2g}" for k, v in r.worst.items()))
    if args.expect_failure:
        if failures:
            print(f"check-torch: the wrong gradient of {args.mlp} was caught, as it must be")
            return 0
        print(f"check-torch: {args.mlp} has a wrong gradient, but the check passed it: the check is blind")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
