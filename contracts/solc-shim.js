#!/usr/bin/env node
// A solc command-line stand-in backed by the npm `solc` package (solc-js), so that py-solc-x can
// drive a pinned compiler without downloading a native binary. It answers the two calls py-solc-x
// makes: `--version` and `--standard-json` (input on stdin, output on stdout).
'use strict';
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('solc-shim: only --version and --standard-json are supported\n');
  process.exit(2);
}
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  // Imports are resolved by the caller, which passes every source in the input JSON.
  const output = solc.compile(input, { import: (p) => ({ error: 'import not found: ' + p }) });
  process.stdout.write(output);
});
