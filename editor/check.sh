#!/usr/bin/env bash
# Builds and tests the VS Code extension: the l3map binary it talks to, the
# extension's npm packages (from package-lock.json), the grammar test over
# mappings/ and the JSON-RPC check against `l3map lsp`, then the .vsix.
# Needs node >= 20 and npm; the result is editor/vscode/l3map.vsix.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin l3map
cd editor/vscode
npm ci --no-audit --no-fund
L3MAP="$PWD/../../target/debug/l3map" npm test
npm run package
echo "built $PWD/l3map.vsix"
