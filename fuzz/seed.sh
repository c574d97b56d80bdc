#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with what the repository already has, so a run
# starts past the checks that random bytes rarely get through (a valid
# trailer header, a GTPL library, a well-formed SDN document):
#
#   smf_reader  every fixture module and the malformed-module corpus
#   sdn_parse   the fixtures' SDN sources, the SDN specification examples
#               and the `note.sdn` sections of the fixture modules
#   ir_decode   the encoded template libraries (the fixtures' uncompressed
#               TemplateCode sections and sample-templates.gtpl) and the
#               IR text sources (*.tir)
#
# A target not listed here starts from an empty corpus. Seeds are named by
# their content's hash, so running the script again adds nothing twice.
#
# Usage: fuzz/seed.sh [TARGET...]   (no argument: every target in Cargo.toml)
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"
fixtures="$root/tests/fixtures"

# Section types and flags from smf/src/kinds.rs and smf/src/raw.rs.
TEMPLATE_CODE=12
TEMPLATE_META=13
COMPRESSED=0x8
HEADER_SIZE=128
SECTION_ENTRY_SIZE=64

targets() {
    sed -n '/^\[\[bin\]\]/,/^$/s/^name *= *"\(.*\)"/\1/p' "$fuzz/Cargo.toml"
}

# Copies FILE into DIR under the hash of its content.
add() {
    local dir="$1" file="$2" sum
    sum="$(sha1sum "$file" | cut -d' ' -f1)"
    cp "$file" "$dir/$sum"
}

# Little-endian unsigned integer of WIDTH bytes at OFFSET in FILE.
uint() {
    od -An -tu"$3" -j "$2" -N "$3" "$1" | tr -d ' '
}

# Writes the stored bytes of each uncompressed section of FILE whose type is
# TYPE to DIR. The header is the file's last 128 bytes; offsets count from
# the SMF data's base (file length − smf_size, or smf_data_offset).
extract_sections() {
    local file="$1" type="$2" dir="$3"
    local len header count table base smf_size i entry tmp
    len="$(stat -c %s "$file")"
    [ "$len" -ge "$HEADER_SIZE" ] || return 0
    header=$((len - HEADER_SIZE))
    [ "$(head -c 4 <(tail -c "$HEADER_SIZE" "$file") | od -An -c | tr -d ' ')" = 'SMF\0' ] || return 0
    count="$(uint "$file" $((header + 16)) 4)"
    table="$(uint "$file" $((header + 24)) 8)"
    smf_size="$(uint "$file" $((header + 88)) 8)"
    if [ "$smf_size" -ne 0 ]; then
        base=$((len - smf_size))
    else
        base="$(uint "$file" $((header + 60)) 4)"
    fi
    tmp="$(mktemp)"
    for ((i = 0; i < count; i++)); do
        entry=$((base + table + i * SECTION_ENTRY_SIZE))
        [ "$(uint "$file" "$entry" 1)" -eq "$type" ] || continue
        (($(uint "$file" $((entry + 4)) 4) & COMPRESSED)) && continue
        tail -c +$((base + $(uint "$file" $((entry + 8)) 8) + 1)) "$file" |
            head -c "$(uint "$file" $((entry + 16)) 8)" >"$tmp"
        add "$dir" "$tmp"
    done
    rm -f "$tmp"
}

seed() {
    local target="$1" dir="$fuzz/corpus/$1" f
    mkdir -p "$dir"
    case "$target" in
    smf_reader)
        for f in "$fixtures"/*.smf "$fixtures"/malformed/*.smf; do add "$dir" "$f"; done
        ;;
    sdn_parse)
        for f in "$fixtures"/src/*.sdn "$root"/sdn/tests/spec/*.sdn; do add "$dir" "$f"; done
        for f in "$fixtures"/*.smf; do extract_sections "$f" "$TEMPLATE_META" "$dir"; done
        ;;
    ir_decode)
        for f in "$fixtures"/src/*.gtpl "$fixtures"/src/*.tir "$root"/jit/ir/templates/*.tir; do
            add "$dir" "$f"
        done
        for f in "$fixtures"/*.smf; do extract_sections "$f" "$TEMPLATE_CODE" "$dir"; done
        ;;
    esac
    echo "$target: $(find "$dir" -type f | wc -l) inputs in ${dir#"$root"/}"
}

if [ $# -eq 0 ]; then
    mapfile -t names < <(targets)
    set -- "${names[@]}"
fi
for t in "$@"; do seed "$t"; done
