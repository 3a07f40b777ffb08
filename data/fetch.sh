#!/bin/sh
# Make sure data/ holds the four MNIST files, each checked against the SHA-256
# of its *uncompressed* content (data/SHA256SUMS), so a file that arrives
# gzip'd or plain, from any mirror or from MNIST_DIR, is checked the same way.
#
# Source, in order: a file already in data/ that passes the check; a copy from
# $MNIST_DIR when it is set; a download with curl from the public mirrors,
# trying each in turn. A file that fails its check is deleted, never used.
# Verified files are kept unpacked: the programs read gzip'd files too, but
# inflating 47 MB costs a tenth of a second at every start.
set -eu
cd "$(dirname "$0")"
MIRRORS="https://ossci-datasets.s3.amazonaws.com/mnist https://storage.googleapis.com/cvdf-datasets/mnist http://yann.lecun.com/exdb/mnist"

if command -v sha256sum >/dev/null; then  # GNU coreutils; macOS has shasum instead
    sha256() { sha256sum; }
else
    sha256() { shasum -a 256; }
fi

sum_of() {  # SHA-256 of the uncompressed content of $1 (gzip'd or plain)
    if [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' \n')" = "1f8b" ]; then
        gzip -dc "$1" | sha256 | cut -d' ' -f1
    else
        sha256 <"$1" | cut -d' ' -f1
    fi
}

have() {  # prints the name of a verified copy of $1 in data/, if any
    for f in "$1.gz" "$1"; do
        if [ -f "$f" ] && [ "$(sum_of "$f")" = "$2" ]; then echo "$f"; return 0; fi
    done
    return 1
}

status=0
while read -r want name; do
    if [ -f "$name" ] && have "$name" "$want" >/dev/null; then continue; fi
    rm -f "$name" "$name.gz"
    if [ -n "${MNIST_DIR:-}" ]; then
        stem=${name%-idx*}; kind=${name#"$stem"-}
        for src in "$MNIST_DIR/$name.gz" "$MNIST_DIR/$name" "$MNIST_DIR/$stem.$kind.gz" "$MNIST_DIR/$stem.$kind"; do
            if [ -f "$src" ]; then
                case "$src" in *.gz) cp "$src" "$name.gz" ;; *) cp "$src" "$name" ;; esac
                break
            fi
        done
    else
        for m in $MIRRORS; do
            echo "fetching $m/$name.gz"
            if curl -fsSL --retry 2 --connect-timeout 15 -o "$name.gz.part" "$m/$name.gz"; then
                mv "$name.gz.part" "$name.gz"
                if have "$name" "$want" >/dev/null; then break; fi
                echo "data: $name.gz from $m failed its checksum; trying the next mirror" >&2
                rm -f "$name.gz"
            fi
            rm -f "$name.gz.part"
        done
    fi
    if f=$(have "$name" "$want"); then
        case "$f" in *.gz) gzip -dc "$f" > "$name.part" && mv "$name.part" "$name" && rm -f "$f" ;; esac
    else
        rm -f "$name" "$name.gz"
        if [ -n "${MNIST_DIR:-}" ]; then
            echo "data: no copy of $name in MNIST_DIR=$MNIST_DIR matches its SHA-256 in data/SHA256SUMS" >&2
        else
            echo "data: could not download $name from any mirror (set MNIST_DIR to a folder that holds MNIST)" >&2
        fi
        status=1
    fi
done < SHA256SUMS
exit $status
