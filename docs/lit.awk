# lit.awk: literate source files in, one Markdown document out. `make docs`
# runs it on every part of the tutorial, in reading order, to make
# docs/tutorial.md, which pandoc then renders. The conventions it implements
# are stated for authors in docs/intro.md, "How this page is made".
#
#   awk -f docs/lit.awk [-v dir=docs] FILE... > docs/tutorial.md
#
# Source files (.cpp, .hpp):
#   - A line whose first non-blank characters are `///` followed by a space or
#     the end of the line is prose. The indentation, the `///` and one space are
#     removed; what is left is Markdown and passes through untouched, so a
#     two-space list continuation or a four-space code block keeps its meaning.
#   - Every other line is code. A run of code lines becomes one ```cpp block;
#     blank lines at the two ends of a run are dropped, and a run that is only
#     blank lines (the gap between a function and the next comment) vanishes.
#     `#pragma once` is dropped: it means nothing to a reader.
#   - Prose and code are separated by a blank line, which Markdown needs
#     around a fenced block, so adjacent prose lines stay one paragraph and a
#     comment split by code becomes two.
# Markdown files (a name ending in .md: intro.md, results.md): every line is
# prose. Each file ends its last paragraph or block; a blank line separates it
# from the next.
#
# Two things in the prose depend on what this build produced. Both are looked
# up in `dir` (default docs), where the page and its pictures live:
#   - An image `![caption](file.svg)` whose file is not there becomes a
#     one-line note naming the file, instead of a broken picture (pandoc would
#     also refuse to embed it). One right after a backtick is an example in
#     inline code and is left alone.
#   - A line `<!-- include FILE -->` is replaced by the lines of FILE, a piece
#     of Markdown the build generated (the results table, the CNN's accuracy),
#     or by a one-line note when FILE is missing.

BEGIN { if (dir == "") dir = "docs"; code = "" }

function exists(f,   line) {  # getline returns -1 when the file cannot be opened
    if ((getline line < f) < 0) return 0
    close(f)
    return 1
}

# Prose: replace images whose file is missing by a note, expand includes.
function prose(s,   out, img, file, line) {
    if (s ~ /^<!-- include [^ ]+ -->$/) {
        file = s
        sub(/^<!-- include /, "", file)
        sub(/ -->$/, "", file)
        if (!exists(dir "/" file)) {
            print "*(Not generated yet: " file ". docs/data/README.md names the inputs `make docs` needs.)*"
            return
        }
        while ((getline line < (dir "/" file)) > 0) prose(line)
        close(dir "/" file)
        return
    }
    out = ""
    while (match(s, /!\[[^]]*\]\([^) ]+\)/)) {
        img = substr(s, RSTART, RLENGTH)
        file = img
        sub(/^!\[[^]]*\]\(/, "", file)
        sub(/\)$/, "", file)
        if (substr(s, RSTART - 1, 1) != "`" && file !~ /^[a-z]+:/ && !exists(dir "/" file))
            img = "*(Figure not built yet: " file ". docs/data/README.md, also at the end of this book, names the command that makes its input.)*"
        out = out substr(s, 1, RSTART - 1) img
        s = substr(s, RSTART + RLENGTH)
    }
    print out s
}

# Print the pending code run as one fenced block, without its edge blank lines.
function flush() {
    sub(/^([ \t]*\n)+/, "", code)
    sub(/[ \t\n]+$/, "", code)
    if (code != "") printf "\n```cpp\n%s\n```\n\n", code
    code = ""
}

FNR == 1 {  # a new file: finish the previous one, note which kind this is
    flush()
    if (NR > 1) print ""
    md = FILENAME ~ /\.md$/
}

md || /^[ \t]*\/\/\/( |$)/ {
    flush()
    line = $0
    if (!md) sub(/^[ \t]*\/\/\/ ?/, "", line)
    prose(line)
    next
}

/^#pragma once/ { next }

{ code = code (code == "" ? "" : "\n") $0 }

END { flush(); print "" }
