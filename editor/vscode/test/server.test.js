// Starts the real `l3map lsp` (L3MAP, or target/debug/l3map) and talks to
// it through vscode-jsonrpc, the JSON-RPC implementation inside the
// extension's language client: initialize, open a file with a typo, and
// expect the checker's diagnostic back. Proves the two ends agree on the
// wire, not only the server against our own Rust test client.
'use strict';

const cp = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const rpc = require('vscode-jsonrpc/node');

const root = path.resolve(__dirname, '..', '..', '..');
const bin = process.env.L3MAP || path.join(root, 'target', 'debug', 'l3map');

async function main() {
  if (!fs.existsSync(bin)) {
    console.log(`server test skipped: no l3map binary at ${bin} (cargo build, or set L3MAP)`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l3map-vscode-'));
  const file = path.join(dir, 'desk.l3map');
  const text = [
    'connection desk: zendesk {',
    '  subdomain  "acme"',
    '  token      env("ZENDESK_OAUTH_TOKEN")',
    '  scopes     read, write, tickets:write',
    '}',
    '',
    'statuses desk {',
    '  new     new     "New"',
    '  solved  solved  "Solved"',
    '',
    '  new -> solvd',
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(file, text);
  const child = cp.spawn(bin, ['lsp'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => {
    console.error('no answer from l3map lsp within 30 s');
    child.kill();
    process.exit(1);
  }, 30000);
  const conn = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin),
  );
  const uri = `file://${file}`;
  const published = new Promise((resolve) => {
    conn.onNotification('textDocument/publishDiagnostics', (p) => {
      if (p.uri === uri) resolve(p.diagnostics);
    });
  });
  conn.listen();
  const init = await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  if (!init.capabilities.documentFormattingProvider) throw new Error('no formatting capability');
  conn.sendNotification('initialized', {});
  conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'l3map', version: 1, text },
  });
  const diags = await published;
  const typo = diags.find((d) => d.code === 'l3map::unknown_name');
  if (!typo || typo.range.start.line !== 10 || typo.range.start.character !== 9) {
    throw new Error(`expected the unknown status at 10:9, got ${JSON.stringify(diags)}`);
  }
  await conn.sendRequest('shutdown');
  conn.sendNotification('exit');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  conn.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`l3map lsp exited with ${code}`);
  console.log('server ok: vscode-jsonrpc and l3map lsp agree');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
