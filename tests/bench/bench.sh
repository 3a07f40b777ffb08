#!/bin/sh
# make bench: this machine's fp32 FMA peak, then one line per program run with
# its default configuration (and the original's other configurations), and,
# when Python can import torch, the same training in PyTorch (the references
# of tests/reference/, as peers) and the speed ratio. Every figure in
# README.md comes from this script.
#
#   PYTHON      the Python with torch (default /usr/bin/python3); the peers are
#               skipped, with one line, when it cannot import torch
#   BENCH_ONLY  space-separated subset of: xor mlp cnn attention peers
#   BENCH_MARCH the -march of the programs to time (set by `make bench
#               MARCH=...`, which builds them into tests/bench/MARCH/); the peak
#               is measured at that target's vector width. Default: native, the
#               programs of `make` in the repository root.
#   BENCH_NATIVE_BLAS=1  unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for ours
#               and the peers alike (by default OPENBLAS_CORETYPE=Haswell, as on
#               the project machines: AVX2 kernels only)
#
# Times: "whole" is the whole process (start-up, loading MNIST, training,
# testing), measured from outside; "train" is the program's own training time.
# GFLOP/s = floating-point operations the training executes (each program
# counts its own, see its RESULT line) / training seconds.
set -eu
cd "$(dirname "$0")/../.."
CXX=${CXX:-g++}
PYTHON=${PYTHON:-/usr/bin/python3}
ONLY=${BENCH_ONLY:-xor mlp cnn attention peers}
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
if [ "${BENCH_NATIVE_BLAS:-0}" = 1 ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; else export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"; fi
export MNIST_DIR=data   # the verified, unpacked copy that `make data` keeps

MARCH=${BENCH_MARCH:-}
if [ -n "$MARCH" ]; then BIN=tests/bench/$MARCH; PEAK=$BIN/peak; else BIN=.; PEAK=tests/bench/peak; fi
$CXX -std=c++20 -O3 -march=${MARCH:-native} -ffp-contract=fast -fopenmp tests/bench/peak.cpp -o "$PEAK"
peak_line=$("./$PEAK")
peak=$(echo "$peak_line" | awk '{print $2}')
echo "$(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}, $(date -u +%Y-%m-%d), -march=${MARCH:-native}"
echo "$peak_line"
printf '%-10s %-44s %8s %8s %8s %9s %6s %8s\n' program config whole_s train_s acc% GFLOP/s %peak maxRSS_MB

# run KEY NAME CONFIG-LABEL COMMAND...: time the whole process, parse RESULT;
# the whole-process seconds are kept under KEY for the ratios at the end.
ours=$(mktemp); : > "$ours.peers"
run() {
    key=$1; name=$2; label=$3; shift 3
    out=$(mktemp)
    t0=$(date +%s.%N)
    if ! /usr/bin/time -f 'MAXRSS %M' "$@" >"$out" 2>"$out.err"; then
        echo "$name: failed: $*"; cat "$out.err"; rm -f "$out" "$out.err"; return 1
    fi
    t1=$(date +%s.%N)
    rss=$(awk '/^MAXRSS/{print $2}' "$out.err")
    echo "$key $(echo "$t1 - $t0" | bc)" >> "$ours"
    awk -v name="$name" -v label="$label" -v whole="$(echo "$t1 - $t0" | bc)" -v peak="$peak" -v rss="$rss" '
        /^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
        END { g = (r["train_s"] > 0) ? r["gflop"] / r["train_s"] : 0
              printf "%-10s %-44s %8.2f %8.3f %8.2f %9.1f %5.1f%% %8.0f\n", name, label, whole, r["train_s"], r["acc"], g, 100 * g / peak, rss / 1024 }' "$out"
    rm -f "$out" "$out.err"
}

if want xor && [ -x $BIN/xor ]; then run xor xor "2-4-1, 1e6 epochs, lr 0.01" $BIN/xor; fi
if want mlp && [ -f mlp.cpp ]; then
    if [ -z "$MARCH" ]; then make -s tests/bench/mlp-builtin tests/bench/mlp-blas >/dev/null; MLP=tests/bench; else MLP=$BIN; fi
    run mlp-builtin mlp "784-512-10, 10 ep, built-in GEMM" ./$MLP/mlp-builtin --save none --log none
    run mlp-blas mlp "784-512-10, 10 ep, OpenBLAS" ./$MLP/mlp-blas --save none --log none
fi
if want cnn && [ -x $BIN/cnn ]; then run cnn cnn "conv3x3x8+pool+fc, 3 ep, batch 32" $BIN/cnn --log none; fi
if want attention && [ -x $BIN/attention ]; then
    run attention-default attention "default: D64 FF128 8 ep, cosine from 0.1" $BIN/attention --log none
    run attention-later attention "orig. later: D64 FF128 8 ep sinusoidal lr .01" $BIN/attention --log none --d-model 64 --ff 128 --epochs 8 --pos sinusoidal --schedule constant --lr 0.01
    run attention-first attention "orig. first: D16 FF32 5 ep random pos" $BIN/attention --log none --d-model 16 --ff 32 --epochs 5 --pos random --schedule constant --lr 0.01
fi

if want peers && $PYTHON -c 'import torch' 2>/dev/null; then
    # Each PyTorch reference trains with our configuration (epochs, batch, lr,
    # Xavier scale) from its own random start. Two thread pools share the
    # cores: torch's (--threads) and OpenBLAS's; a short trial of each pair
    # picks the fastest for this machine, and the full run uses it.
    n=$(nproc); counts=1; [ "$n" -gt 1 ] && counts="1 $n"
    echo "PyTorch peers (tests/reference/), each at the fastest of OPENBLAS_NUM_THREADS x --threads in {$counts} in a short trial:"
    peer() {  # peer NAME TRIAL_STEPS ARGS...
        name=$1; trial=$2; shift 2
        best=""; setting=""; tried=""
        for ob in $counts; do for th in $counts; do
            ts=$(OPENBLAS_NUM_THREADS=$ob $PYTHON "tests/reference/$name.py" --threads "$th" --steps "$trial" "$@" |
                 sed -n 's/^RESULT.* train_s=\([0-9.]*\).*/\1/p')
            tried="$tried $ob/$th:${ts:-failed}s"
            if [ -n "$ts" ] && { [ -z "$best" ] || [ "$(echo "$ts < $best" | bc)" = 1 ]; }; then best=$ts; setting="$ob $th"; fi
        done; done
        echo "  $name trial, $trial steps, OPENBLAS_NUM_THREADS/--threads:$tried"
        [ -n "$setting" ] || { echo "  $name: failed"; return 0; }
        set -- $setting "$@"; ob=$1; th=$2; shift 2
        line=$(OPENBLAS_NUM_THREADS=$ob $PYTHON "tests/reference/$name.py" --threads "$th" "$@" | grep '^RESULT')
        ts=$(echo "$line" | sed 's/.* train_s=\([0-9.]*\).*/\1/'); acc=$(echo "$line" | sed 's/.* acc=\([0-9.]*\).*/\1/')
        echo "  $name${*:+ $*} OPENBLAS_NUM_THREADS=$ob --threads $th: train_s=$ts acc=$acc"
        echo "$name $ts" >> "$ours.peers"
    }
    want cnn && peer cnn 300
    want mlp && peer mlp 300
    want attention && peer attention 100
    echo "Speed ratios, the peer's training seconds / our whole process (start-up, loading and testing included):"
    ratio() {  # ratio PEER KEY: print peer / ours
        p=$(awk -v k="$1" '$1 == k {print $2}' "$ours.peers"); o=$(awk -v k="$2" '$1 == k {print $2}' "$ours")
        if [ -n "$p" ] && [ -n "$o" ]; then printf '  %-18s %6.2f s vs %6.2f s: %5.1fx\n' "$2" "$p" "$o" "$(echo "$p / $o" | bc -l)"; fi
    }
    ratio cnn cnn; ratio mlp mlp-builtin; ratio mlp mlp-blas; ratio attention attention-default
elif want peers; then
    echo "PyTorch peers: skipped: $PYTHON cannot import torch (Debian: apt-get install python3-torch libopenblas0-pthread)"
fi
rm -f "$ours" "$ours.peers"
