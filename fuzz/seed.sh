#!/bin/sh
# Seeds the corpora of both targets with the real mappings.
set -eu
cd "$(dirname "$0")"
for t in parse check; do
    mkdir -p "corpus/$t"
    for f in ../mappings/*/*.l3map; do
        cp "$f" "corpus/$t/$(echo "$f" | sed 's|^\.\./mappings/||; s|/|_|g')"
    done
done
