#!/bin/sh
# Seeds the corpora: the real mappings for the parser and the checker, the
# recorded events and the source payloads for the payload converters and the
# webhook handler, the mappings' templates for the template renderer.
set -eu
cd "$(dirname "$0")"
name() { echo "$1" | sed 's|^\.\./||; s|/|_|g'; }
for t in parse check; do
    mkdir -p "corpus/$t"
    for f in ../mappings/*/*.l3map; do
        cp "$f" "corpus/$t/$(echo "$f" | sed 's|^\.\./mappings/||; s|/|_|g')"
    done
done
# One payload a file: each source fixture whole, and the first lines of each
# recorded event stream (one event a line).
mkdir -p corpus/events corpus/webhook corpus/template
for f in ../tests/fixtures/sources/*.json; do
    cp "$f" "corpus/events/$(name "$f")"
    # The webhook target reads its first byte as the header mode (0: signed).
    { printf '\000'; cat "$f"; } > "corpus/webhook/$(name "$f")"
done
for f in ../tests/data/events/*.jsonl ../tests/fixtures/events/*.jsonl; do
    n=0
    head -n 40 "$f" | while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "$line" > "corpus/events/$(name "$f")-$n"
        { printf '\000'; printf '%s' "$line"; } > "corpus/webhook/$(name "$f")-$n"
    done
done
# The template target reads a template's text, a NUL, then an event: each
# template of the mappings (the text between its triple quotes) with an
# event line.
for f in ../mappings/*/*.l3map; do
    awk -v out="corpus/template/$(name "$f")" '
        /^template [a-z_0-9]+ """/ { on = 1; n++; sub(/^template [a-z_0-9]+ """/, ""); body = $0 "\n"; next }
        on && /"""/ { sub(/""".*/, ""); body = body $0; printf "%s", body > (out "-" n); close(out "-" n); on = 0; next }
        on { body = body $0 "\n" }
    ' "$f"
done
ev=$(head -n 1 ../tests/data/events/fintech.jsonl)
for f in corpus/template/*; do
    [ -f "$f" ] && { printf '\000%s' "$ev" >> "$f"; }
done
true
