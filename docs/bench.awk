# bench.awk: the output of `make bench`, committed as docs/data/bench.txt, to
# the Markdown table of the results page.
#
#   awk -f docs/bench.awk docs/data/bench.txt > docs/bench.md
#
# bench.txt as tests/bench/bench.sh writes it: a line describing the machine
# and the date, the measured fp32 peak, a column header starting "program",
# one row per run (program, a free-text configuration, then six numbers:
# whole_s train_s acc% GFLOP/s %peak maxRSS_MB), then perhaps the PyTorch
# peers' lines. A first line "$ COMMAND" records the command that wrote the
# file when it was not plain `make bench` (a subset, say); it is not output.
# Rows become a table; the lines after them are kept verbatim in a block, so
# nothing the benchmark said is lost or reworded.

NR == 1 && /^\$ / { cmd = substr($0, 3); next }
!machine { machine = $0; next }
/^peak / { peak = $0; next }
/^program / { in_rows = 1; next }
in_rows && NF >= 8 && $(NF - 1) ~ /%$/ {
    config = $2
    for (i = 3; i <= NF - 6; ++i) config = config " " $i
    rows[++n] = sprintf("| %s | %s | %s | %s | %s%% | %s | %s | %s |", $1, config, $(NF - 4), $(NF - 5),
                        $(NF - 3), $(NF - 2), $(NF - 1), $NF)
    next
}
{ in_rows = 0; rest[++m] = $0 }

END {
    if (cmd == "") cmd = "make bench"
    printf "Measured by `%s`, whose output is committed as `docs/data/bench.txt`: %s; %s.\n\n", cmd, machine, peak
    print "| program | configuration | training s | whole process s | test accuracy | GFLOP/s | of peak | max RSS MB |"
    print "|---|---|--:|--:|--:|--:|--:|--:|"
    for (i = 1; i <= n; ++i) print rows[i]
    if (m) {
        print "\nThe rest of that output:\n"
        for (i = 1; i <= m; ++i) print "    " rest[i]
    }
    print ""
}
