# links.awk: the rendered tutorial in, the same page with its names linked
# out. `make docs` runs it on what pandoc made, reading the page twice:
#
#   awk -f docs/links.awk page.html page.html > linked.html
#
# First pass: the definitions. Each file of the book starts with a comment
# `<!-- part NAME -->` (docs/lit.awk writes it; common.hpp is the part
# `common`, whose names the chapters write `nn::NAME`). In the highlighted
# code, a line that starts at column 0 defines
#   - a type:      `struct NAME`, `enum NAME`, `enum class NAME`, `using NAME =`
#   - constants:   `constexpr TYPE NAME = ..., NAME2[...] = {...}` (every name)
#   - a function:  `TYPE NAME(` on a line that does not end with `;`
# The first definition of a name in a part is its anchor: the name at that
# line becomes <a class="def" id="def-PART-NAME">, a link to itself.
#
# Second pass: the links. In the code, and in the prose's inline code, a name
# becomes a link to its definition in the same part, or to common.hpp's when
# written `nn::NAME` (or the part says `using nn::NAME;`). Left alone, so that
# a link is never wrong: a member (`t.route`, `p->x`), a name after another
# `::` (`std::`), a function name not followed by `(` in code, names of one
# letter (`C`, `K`: too common as locals), comments and strings (the token
# classes pandoc gives them), headings, the table of contents, math, and
# anything already inside a link.

BEGIN { nparts = 0 }

function visible(s) {
    gsub(/<[^>]*>/, "", s)
    gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s); gsub(/&quot;/, "\"", s); gsub(/&amp;/, "\\&", s)
    return s
}

function define(name, kind, lineid) {
    if ((part, name) in kinds) return
    kinds[part, name] = kind
    at[part, lineid] = at[part, lineid] " " name " "
}

# First pass: record the definitions on one code line.
function scan(html,   id, v, head, name, rest, words) {
    if (!match(html, /<span id="cb[0-9]+-[0-9]+">/)) return
    id = substr(html, RSTART + 10, RLENGTH - 12)
    v = visible(html)
    if (v ~ /^using nn::[A-Za-z_][A-Za-z0-9_]*;/) {
        name = v; sub(/^using nn::/, "", name); sub(/;.*/, "", name)
        alias[part, name] = 1
        return
    }
    sub(/^\[\[[a-z_]+\]\] */, "", v)
    if (v !~ /^[A-Za-z_]/) return
    if (match(v, /^(template *<[^>]*> *)?(struct|enum|enum class|using) +[A-Za-z_][A-Za-z0-9_]*/)) {
        name = substr(v, 1, RLENGTH); sub(/.* /, "", name)
        if (v ~ /^using/ && substr(v, RLENGTH + 1) !~ /^ *=/) return
        define(name, "type", id)
        return
    }
    if (v ~ /^((static|inline) +)*constexpr /) {
        rest = v
        sub(/\/\/.*/, "", rest)
        while (gsub(/\{[^{}]*\}/, "", rest)) {}
        while (match(rest, /[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])* *=/)) {
            name = substr(rest, RSTART, RLENGTH)
            sub(/[[ =].*/, "", name)
            define(name, "const", id)
            rest = substr(rest, RSTART + RLENGTH)
        }
        return
    }
    if (v ~ /;[ \t]*$/ || v ~ /;[ \t]*\/\//) return  # a declaration
    head = v
    sub(/\(.*/, "", head)
    if (head == v || head ~ /[=;{}"]/) return
    if (!match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t]*$/) || RSTART == 1) return
    name = substr(head, RSTART)
    sub(/[ \t]+$/, "", name)
    split(head, words, /[ \t]+/)
    if (words[1] ~ /^(return|if|for|while|switch|static_assert|else|do|case|goto|throw|delete|new)$/) return
    define(name, "function", id)
}

# Where a name written in `p` (the current part) points, or "".
function target(name, qualified, call,   p, k) {
    if (length(name) < 2) return ""
    if (qualified) p = "common"
    else if ((part, name) in kinds) p = part
    else if (((part, name) in alias) && (("common", name) in kinds)) p = "common"
    else return ""
    k = kinds[p, name]
    if (k == "function" && !call) return ""
    return "def-" (p == "common" ? "nn" : p) "-" name
}

# Second pass: link the names in one run of text. `before` is the text of this
# line (or inline code) so far, `after` the rest of the line, for context.
function linkify(seg, before, after, incode,   out, name, q, call, t, pre, a, nx) {
    out = ""
    while (match(seg, /[A-Za-z_][A-Za-z0-9_]*/)) {
        name = substr(seg, RSTART, RLENGTH)
        pre = before substr(seg, 1, RSTART - 1)
        seg = substr(seg, RSTART + RLENGTH)
        out = out substr(pre, length(before) + 1)
        before = pre name
        if (substr(pre, length(pre), 1) ~ /[A-Za-z0-9_]/ || pre ~ /(\.|-&gt;)$/ || (pre ~ /::$/ && pre !~ /(^|[^A-Za-z0-9_])nn::$/)) {
            out = out name
            continue
        }
        q = pre ~ /(^|[^A-Za-z0-9_])nn::$/
        a = seg after
        if (incode) sub(/<\/code>.*/, "", a)
        nx = visible(a)
        call = nx ~ /^[ \t]*\(/ || (incode && nx == "" && (pre == "" || pre == "nn::"))
        t = target(name, q, call)
        if (t != "" && !q && index(at[part, lineid], " " name " ") && !((part, name) in anchored)) {
            anchored[part, name] = 1
            out = out "<a class=\"def\" id=\"" t "\" href=\"#" t "\">" name "</a>"
            ++defs
        } else if (t != "") {
            out = out "<a class=\"ref\" href=\"#" t "\">" name "</a>"
            ++refs
        } else out = out name
    }
    return out seg
}

# Second pass: one line of the page, tag by tag.
function link(html,   out, tag, e, seg, i, cls) {
    out = ""
    vis = ""
    lineid = ""
    while (html != "") {
        if (raw != "") {  # inside <style> or <script>: copied as it is
            i = index(html, raw)
            if (i == 0) return out html
            out = out substr(html, 1, i - 1)
            html = substr(html, i)
            raw = ""
            continue
        }
        if (substr(html, 1, 4) == "<!--") {
            e = index(html, "-->")
            if (e == 0) { comment = 1; return out html }
            tag = substr(html, 1, e + 2)
            if (tag ~ /^<!-- part [A-Za-z0-9_]+ -->$/) { part = tag; sub(/^<!-- part /, "", part); sub(/ -->$/, "", part) }
            out = out tag
            html = substr(html, e + 3)
            continue
        }
        if (substr(html, 1, 1) == "<" && (e = index(html, ">")) > 0) {
            tag = substr(html, 1, e)
            html = substr(html, e + 1)
            out = out tag
            if (tag ~ /^<style/) raw = "</style>"
            else if (tag ~ /^<script/) raw = "</script>"
            else if (tag ~ /^<pre/) { inpre = 1; depth = 0 }
            else if (tag ~ /^<\/pre/) inpre = 0
            else if (tag ~ /^<span/ && inpre) {
                cls[++depth] = tag ~ /^<span id="cb/ ? "line" : "token"
                if (tag ~ /^<span id="cb/) { lineid = tag; sub(/^<span id="/, "", lineid); sub(/".*/, "", lineid); vis = "" }
            }
            else if (tag ~ /^<\/span/ && inpre) depth--
            else if (tag ~ /^<code/ && !inpre) { incode = 1; vis = "" }
            else if (tag ~ /^<\/code/ && !inpre) incode = 0
            else if (tag ~ /^<a[ >]/) ina++
            else if (tag ~ /^<\/a>/) ina--
            else if (tag ~ /^<h[1-6][ >]/) inhead = 1
            else if (tag ~ /^<\/h[1-6]>/) inhead = 0
            else if (tag ~ /^<nav/) innav = 1
            else if (tag ~ /^<\/nav>/) innav = 0
            else if (tag ~ /^<math/) inmath = 1
            else if (tag ~ /^<\/math>/) inmath = 0
            continue
        }
        i = index(substr(html, 2), "<")
        if (i == 0) { seg = html; html = "" } else { seg = substr(html, 1, i); html = substr(html, i + 1) }
        if (!ina && !inhead && !innav && !inmath && ((inpre && depth == 1) || (incode && !inpre)))
            out = out linkify(seg, vis, html, incode && !inpre)
        else out = out seg
        vis = vis seg
    }
    return out
}

NR == FNR {
    if (match($0, /<!-- part [A-Za-z0-9_]+ -->/)) { part = substr($0, RSTART + 10, RLENGTH - 14) }
    if (index($0, "<span id=\"cb")) scan($0)
    next
}

FNR == 1 { part = "" }

{
    if (comment) {
        if (index($0, "-->")) comment = 0
        print
        next
    }
    print link($0)
}

END { if (report != "") printf "%d definitions, %d links\n", defs, refs > report }
