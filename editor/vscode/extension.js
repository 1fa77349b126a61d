// Starts `l3map lsp` (the path is the `l3map.path` setting) for .l3map
// documents; every feature lives in the server, so the editor shows exactly
// what `l3map check` and `l3map fmt` do.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function start() {
  const command = vscode.workspace.getConfiguration('l3map').get('path') || 'l3map';
  client = new LanguageClient(
    'l3map',
    'l3map language server',
    { command, args: ['lsp'] },
    {
      documentSelector: [
        { scheme: 'file', language: 'l3map' },
        { scheme: 'untitled', language: 'l3map' },
      ],
    },
  );
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `l3map: could not start \`${command} lsp\` (${err.message}). Set "l3map.path" to the l3map executable.`,
    );
  });
}

function activate(context) {
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('l3map.path')) {
        if (client) {
          await client.stop();
        }
        await start();
      }
    }),
  );
  return start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
