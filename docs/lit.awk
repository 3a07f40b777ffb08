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
# Pairs, for the side-by-side page. A heading (a prose line starting with `#`,
# outside a fenced block) stands on its own. The prose after a heading, up to
# the next code block, and that code block form a pair:
#
#   <div class="pair">      the page sets these two side by side
#   <div class="prose">     (docs/tutorial-style.html); a code host
#   ...the prose...         shows the Markdown inside as usual
#   </div>
#   <div class="code">
#   ```cpp ...the code... ```
#   </div>
#   </div>
#
# A code block of more than 40 lines is <div class="code long">: printed, it
# may break across pages (a shorter one moves whole to the next page).
# Prose that no code follows (before a heading, at the end of a file, all of a
# Markdown file) becomes <div class="text">; code after a heading with no
# prose before it, a pair whose prose is empty. Each file starts with a
# comment `<!-- part NAME -->` (NAME: the file's name without its extension)
# that docs/links.awk reads to know which file's definitions a name means.
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

BEGIN { if (dir == "") dir = "docs"; code = ""; text = ""; fence = ""; LONG = 40 }

function exists(f,   line) {  # getline returns -1 when the file cannot be opened
    if ((getline line < f) < 0) return 0
    close(f)
    return 1
}

# Prose: replace images whose file is missing by a note, expand includes;
# returns the line(s) to add to the pending prose.
function prose(s,   out, img, file, line) {
    if (s ~ /^<!-- include [^ ]+ -->$/) {
        file = s
        sub(/^<!-- include /, "", file)
        sub(/ -->$/, "", file)
        if (!exists(dir "/" file))
            return "*(Not generated yet: " file ". docs/data/README.md names the inputs `make docs` needs.)*"
        out = ""
        while ((getline line < (dir "/" file)) > 0) out = out (out == "" ? "" : "\n") prose(line)
        close(dir "/" file)
        return out
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
    return out s
}

function trim(s) {
    sub(/^([ \t]*\n)+/, "", s)
    sub(/[ \t\n]+$/, "", s)
    return s
}

# Print the pending prose and code: a pair when there is code, else the prose
# alone.
function flush(   t, c, lines) {
    t = trim(text)
    c = trim(code)
    lines = split(c, unused, "\n")
    if (c != "")
        printf "<div class=\"pair\">\n<div class=\"prose\">\n\n%s%s</div>\n<div class=\"%s\">\n\n```cpp\n%s\n```\n\n</div>\n</div>\n\n",
            t, (t == "" ? "" : "\n\n"), (lines > LONG ? "code long" : "code"), c
    else if (t != "")
        printf "<div class=\"text\">\n\n%s\n\n</div>\n\n", t
    text = ""
    code = ""
}

FNR == 1 {  # a new file: finish the previous one, note which kind this is
    flush()
    fence = ""
    md = FILENAME ~ /\.md$/
    part = FILENAME
    sub(/^.*\//, "", part)
    sub(/\.[a-z]+$/, "", part)
    printf "<!-- part %s -->\n\n", part
}

md || /^[ \t]*\/\/\/( |$)/ {
    line = $0
    if (!md) sub(/^[ \t]*\/\/\/ ?/, "", line)
    if (code != "" && code !~ /^[ \t\n]*$/) flush()
    code = ""
    if (fence == "" && match(line, /^(```|~~~)/)) fence = substr(line, 1, 3)
    else if (fence != "" && index(line, fence) == 1) fence = ""
    else if (fence == "" && line ~ /^#+ /) {  # a heading stands alone
        flush()
        print line "\n"
        next
    }
    text = text "\n" prose(line)
    next
}

/^#pragma once/ { next }

{ code = code (code == "" ? "" : "\n") $0 }

END { flush() }
