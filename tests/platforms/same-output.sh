#!/bin/sh
# Usage: sh tests/platforms/same-output.sh DIR_A DIR_B [PROGRAM ...]
#
# Runs each PROGRAM (default: xor mlp cnn attention) as built in DIR_A and as
# built in DIR_B, one thread, default seed, short runs (xor whole, the MNIST
# programs one epoch), and fails unless the two print the same lines (the
# seconds masked: they are the only thing allowed to differ) and save models
# of the same bytes. CI runs it on the OpenMP build against the OPENMP=0 one,
# and on the x86-64 build against the ARM64 one (xor only) with
#   RUN_B="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# (a command that runs DIR_B's binaries). The MNIST programs are skipped, with
# a line saying so, when neither $MNIST_DIR nor data/ holds MNIST.
set -u
[ $# -ge 2 ] || { echo "usage: $0 DIR_A DIR_B [PROGRAM ...]" >&2; exit 2; }
a=$1 b=$2
shift 2
[ $# -gt 0 ] || set -- xor mlp cnn attention
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mnist=no
for f in "${MNIST_DIR:-data}"/t10k-labels*idx1-ubyte*; do [ -e "$f" ] && mnist=yes; done
mask() {  # FILE SIDE: the seconds, and the name of the side's model file
    sed -E "s/(time=|Time: |train_s=)[0-9.]+/\\1<s>/g; s/[0-9.]+ seconds/<s> seconds/g; s/\\.$2\\.model/.model/g" "$1"
}
fail=0
for p in "$@"; do
    case $p in
    xor) args="" ;;
    *)
        if [ $mnist = no ]; then echo "same-output: $p: skipped, no MNIST in \$MNIST_DIR or data/"; continue; fi
        args="--epochs 1 --threads 1 --log none" ;;
    esac
    for side in a b; do
        if [ $side = a ]; then dir=$a run=""; else dir=$b run=${RUN_B:-}; fi
        save=""
        [ $p = xor ] || save="--save $tmp/$p.$side.model"
        # shellcheck disable=SC2086  # $run and $args are lists of words
        if ! $run "$dir/$p" $args $save >"$tmp/$p.$side.out" 2>"$tmp/$p.$side.err"; then
            echo "same-output: $dir/$p failed: $(head -n 1 "$tmp/$p.$side.err")"; fail=1; continue 2
        fi
    done
    mask "$tmp/$p.a.out" a >"$tmp/$p.a.txt"
    mask "$tmp/$p.b.out" b >"$tmp/$p.b.txt"
    if ! diff "$tmp/$p.a.txt" "$tmp/$p.b.txt" >"$tmp/$p.diff"; then
        echo "same-output: $p: $a/$p and $b/$p print different lines:"; head -n 20 "$tmp/$p.diff"; fail=1
    elif [ $p != xor ] && ! cmp -s "$tmp/$p.a.model" "$tmp/$p.b.model"; then
        echo "same-output: $p: the two builds saved different models"; fail=1
    else
        echo "same-output: $p: same $(wc -l <"$tmp/$p.a.txt") lines$([ $p = xor ] || echo ', same model bytes')"
    fi
done
exit $fail
