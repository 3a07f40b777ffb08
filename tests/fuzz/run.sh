#!/bin/sh
# make fuzz: run each libFuzzer target for SECONDS seconds on a copy of its
# committed seed corpus (tests/fuzz/corpus/<target>/), and print its executions
# and findings. Findings (crash inputs) go to tests/fuzz/findings/; the run
# fails if any target found something.
#   usage: run.sh SECONDS TARGET...
set -u
cd "$(dirname "$0")"
secs=$1; shift
mkdir -p findings
status=0
for t in "$@"; do
    work=$(mktemp -d)
    [ -d "corpus/$t" ] && cp -r "corpus/$t/." "$work/" 2>/dev/null
    log=$(mktemp)
    NN_FUZZ_SEEDS="$work" "./bin/$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
        -max_len=200000 -artifact_prefix="findings/$t-" "$work" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    found=$(ls findings 2>/dev/null | grep -c "^$t-")
    printf '%-22s %12s executions, %d findings (exit %d)\n' "$t" "${execs:-?}" "$found" "$rc"
    if [ "$rc" != 0 ] || [ "$found" != 0 ]; then status=1; tail -30 "$log"; fi
    rm -rf "$work" "$log"
done
exit $status
