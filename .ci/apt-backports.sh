#!/bin/sh
# Prints a deb822 stanza for bookworm-backports made from this machine's own bookworm entry:
# the same URIs and Signed-By, so that a machine behind a local mirror, a proxy or a
# snapshot keeps using it and no mirror host is written into the sources by us.
#   .ci/apt-backports.sh [apt dir, default /etc/apt]
# Reads <dir>/sources.list and <dir>/sources.list.d/*.list (one-line entries) and
# <dir>/sources.list.d/*.sources (deb822), in apt's order, skipping disabled entries and
# deb-src only ones. Exit 0 with nothing printed: an enabled bookworm-backports entry exists
# already. Exit 0 with the stanza: write it. Exit 1: no bookworm entry to copy from.
set -eu
dir="${1:-/etc/apt}"

set --
[ -f "$dir/sources.list" ] && set -- "$dir/sources.list"
# then sources.list.d in name order (a glob is sorted), whatever the format, as apt does
for f in "$dir"/sources.list.d/*; do
    case "$f" in
    *.list | *.sources) [ -f "$f" ] && set -- "$@" "$f" ;;
    esac
done
[ $# -gt 0 ] || exit 1

exec awk '
function words_have(list, w,    n, a, i) {
    n = split(list, a, /[ \t]+/)
    for (i = 1; i <= n; i++)
        if (a[i] == w)
            return 1
    return 0
}
# one entry: its types, URIs, suites, and its Signed-By as the lines to write
function entry(types, uris, suites, signed) {
    if (!words_have(types, "deb"))
        return
    if (words_have(suites, "bookworm-backports"))
        have = 1
    if (words_have(suites, "bookworm") && found_uris == "") {
        found_uris = uris
        found_signed = signed
    }
}
function stanza_end() {
    if (in_stanza && tolower(f["enabled"]) != "no")
        entry(f["types"], f["uris"], f["suites"], f["signed-by"])
    delete f
    in_stanza = 0
    field = ""
}
function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
FNR == 1 { stanza_end() }
FILENAME ~ /\.sources$/ {
    if ($0 ~ /^#/)
        next
    if ($0 ~ /^[ \t]*$/) {
        stanza_end()
        next
    }
    if ($0 ~ /^[ \t]/) {                 # continuation of a multi-line field (an inline key)
        if (field == "signed-by")
            f[field] = f[field] "\n" $0
        else if (field != "")
            f[field] = f[field] " " trim($0)
        next
    }
    if (match($0, /^[A-Za-z0-9-]+:/)) {
        field = tolower(substr($0, 1, RLENGTH - 1))
        f[field] = trim(substr($0, RLENGTH + 1))
        in_stanza = 1
    }
    next
}
{
    sub(/#.*/, "")
    if (NF < 3)
        next
    type = $1
    i = 2
    signed = ""
    if ($2 ~ /^\[/) {                    # [ opt=value ... ]
        opts = ""
        for (; i <= NF; i++) {
            opts = opts " " $i
            if ($i ~ /\]$/)
                break
        }
        i++
        gsub(/[][]/, " ", opts)
        n = split(opts, o, /[ \t]+/)
        for (k = 1; k <= n; k++)
            if (tolower(o[k]) ~ /^signed-by=/)
                signed = substr(o[k], 11)
    }
    if (i + 1 <= NF)
        entry(type, $i, $(i + 1), signed)
}
END {
    stanza_end()
    if (have)
        exit 0
    if (found_uris == "")
        exit 1
    print "Types: deb"
    print "URIs: " found_uris
    print "Suites: bookworm-backports"
    print "Components: main"
    if (found_signed != "")
        print "Signed-By: " found_signed
}' "$@"
