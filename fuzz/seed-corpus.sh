#!/bin/sh
# Seeds the fuzz corpora with the `result` objects of the spec's example
# responses (shared/spec/fixtures/response-*.json). The corpora are not
# committed; run this once before the first `cargo fuzz run`.
#
#   fuzz/seed-corpus.sh [SPEC_FIXTURES_DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${1:-${SHARD_SPEC_DIR:+$SHARD_SPEC_DIR/fixtures}}
if [ -z "$fixtures" ]; then
    dir=$here
    while [ "$dir" != / ] && [ ! -d "$dir/shared/spec/fixtures" ]; do
        dir=$(dirname "$dir")
    done
    fixtures=$dir/shared/spec/fixtures
fi
[ -d "$fixtures" ] || { echo "no fixtures directory at $fixtures" >&2; exit 1; }
for target in parse_response apply_response; do
    mkdir -p "$here/corpus/$target"
    for f in "$fixtures"/response-*.json; do
        name=$(basename "$f" .json)
        python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["result"], sys.stdout)' \
            "$f" > "$here/corpus/$target/$name"
    done
done
# Two responses separated by a NUL: apply_response applies the second on
# top of the first.
set -- "$here"/corpus/apply_response/response-*
for a in "$@"; do
    for b in "$@"; do
        [ "$a" = "$b" ] && continue
        { cat "$a"; printf '\0'; cat "$b"; } > "$a+$(basename "$b")"
    done
done
echo "seeded $(ls "$here"/corpus/parse_response | wc -l) responses from $fixtures"
