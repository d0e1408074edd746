#!/bin/sh
# run-fuzz.sh - runs the envelope fuzzer for a fixed time on a scratch copy of the seed corpus.
#
#   run-fuzz.sh [SECONDS] [FUZZER]
#
# SECONDS defaults to 30. FUZZER is the fuzz_envelope binary; by default it is looked for in
# ./tests/ and ./ (run from the build directory). The seeds in corpus_envelope/ next to this
# script are copied into a temporary directory, so new corpus entries never land in the source
# tree. Exits non-zero when the fuzzer fails; the crashing input and the log are then kept and
# their location printed.
set -u

seconds=${1:-30}
fuzzer=${2:-}
here=$(cd "$(dirname "$0")" && pwd)

case $seconds in
    ''|*[!0-9]*) echo "run-fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac
if [ -z "$fuzzer" ]; then
    for f in ./tests/fuzz_envelope ./fuzz_envelope; do
        if [ -x "$f" ]; then fuzzer=$f; break; fi
    done
fi
if [ -z "$fuzzer" ] || [ ! -x "$fuzzer" ]; then
    echo "run-fuzz.sh: fuzz_envelope binary not found (configure with -DWEFT_FUZZ=ON, or pass its path)" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-fuzz.XXXXXX") || exit 2
mkdir "$work/corpus" "$work/artifacts"
cp "$here"/corpus_envelope/* "$work/corpus/"

echo "run-fuzz.sh: $fuzzer for ${seconds}s in $work"
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
tail -n 25 "$work/fuzz.log"

if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
    echo "run-fuzz.sh: the fuzzer failed (exit $rc); log and inputs kept in $work" >&2
    ls -l "$work/artifacts" >&2
    exit 1
fi
rm -rf "$work"
echo "run-fuzz.sh: no crash in ${seconds}s"
exit 0
