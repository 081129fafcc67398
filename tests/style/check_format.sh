#!/usr/bin/env bash
# The layout .clang-format describes, and a short list of calls with sharp edges kept out
# of the C sources (curl's checksrc): prints each offence as FILE:LINE and exits 1.
set -euo pipefail
root="${1:?usage: check_format.sh SOURCE_ROOT}"
cd "$root"
mapfile -t files < <(git ls-files 'src/*.[ch]' 'include/*.h' 'tests/*.[ch]' 2>/dev/null ||
                     find src include tests -name '*.[ch]')
status=0
if ! command -v clang-format >/dev/null; then
        echo "clang-format is missing: apt-get install clang-format (.ci/install-deps does)" >&2
        exit 1
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/check_format.$$; then
        grep -E '^[^ ].*:[0-9]+:[0-9]+: error' /tmp/check_format.$$ | sed 's/: error: code should be clang-formatted.*//' | head -50
        echo "files not laid out as .clang-format says: run clang-format -i on them" >&2
        status=1
fi
rm -f /tmp/check_format.$$
# atoi and friends cannot report errors; sprintf, strcpy, strcat cannot bound their
# output; strtok keeps hidden state; gets cannot be used safely at all
if grep -nE '(^|[^_[:alnum:]])(atoi|atol|atoll|sprintf|vsprintf|strcpy|strcat|strtok|gets)[[:space:]]*\(' \
        "${files[@]}" | grep -v '^\S*:[0-9]*:\s*/\?\*'; then
        echo "banned calls above: use strtol/eg_parse_*, snprintf/eg_strdup_printf/eg_buf, strtok_r" >&2
        status=1
fi
exit $status
