// The real `portcullis-mock` and a `portcullis serve` in front of it, on free ports, for the Node
// SDK tests (the pattern of tests/clients/conftest.py: backends `openai`, `anthropic`, `gemini`
// from the ecosystem's env vars, client auth on, `x-mock` forwarded), and the result rows README's
// client table is made from.
//
// `PORTCULLIS_BIN_DIR` names the directory with the built binaries (default: target/debug).
// When `PORTCULLIS_CLIENT_RESULTS` names a directory, each test file writes `<slug>.json` there.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const BIN_DIR = process.env.PORTCULLIS_BIN_DIR || join(ROOT, 'target', 'debug');

export const MOCK_TEXT = 'Hello from portcullis-mock.';
const CLIENT_KEY = 'node-clients-gateway-key-0123456789';
const UPSTREAM_KEY = 'sk-node-clients-upstream-0123456789';

/** Starts `bin args`; resolves with the process and `match(line)`'s first truthy value. */
function startProcess(bin, args, env, stream, match) {
  const proc = spawn(join(BIN_DIR, bin), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = [];
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc[stream] });
    lines.on('line', (line) => {
      seen.push(line);
      const value = match(line);
      if (value) resolve({ proc, value });
    });
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`${bin} exited (${code}) before it listened:\n${seen.join('\n')}`)));
  });
}

function listening(line) {
  try {
    const v = JSON.parse(line);
    return v.message === 'portcullis listening' ? `http://${v.addr}` : null;
  } catch {
    return null;
  }
}

/** Starts the mock and the gateway before the file's tests, stops them after; `gateway.url`. */
export function useGateway() {
  const gateway = { url: null, key: CLIENT_KEY };
  const procs = [];
  before(async () => {
    const path = { PATH: process.env.PATH };
    const mock = await startProcess('portcullis-mock', ['--port', '0'], path, 'stdout', (l) =>
      l.includes('listening on') ? l.split(' ').pop() : null,
    );
    procs.push(mock.proc);
    const env = {
      ...path,
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: `${mock.value}/v1`,
      ANTHROPIC_API_KEY: UPSTREAM_KEY,
      ANTHROPIC_BASE_URL: mock.value,
      GEMINI_API_KEY: UPSTREAM_KEY,
      GEMINI_BASE_URL: mock.value,
      PORTCULLIS_API_KEYS: CLIENT_KEY,
      PORTCULLIS_FORWARD_HEADERS: 'x-mock',
    };
    const args = ['serve', '--port', '0', '--log-format', 'json'];
    const gw = await startProcess('portcullis', args, env, 'stderr', listening);
    procs.push(gw.proc);
    gateway.url = gw.value;
  });
  after(() => {
    for (const p of procs) p.kill('SIGTERM');
  });
  return gateway;
}

/**
 * The `x-mock` header that makes the mock call tool `name` with exactly `args`; the request that
 * ends in the tool's result is answered `Tool result received: <result>`.
 */
export function callTool(name, args) {
  return { 'x-mock': `tool=${name}; tool_args=${encodeURIComponent(JSON.stringify(args))}` };
}

/** The version of an npm package installed next to these tests. */
export function installedVersion(pkg) {
  return JSON.parse(readFileSync(join(HERE, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

/**
 * A client as README's table shows it (`name`, `package`, `version`, `base_url`, `key`, `setup`,
 * `limits`); `op(name, fn)` is a test of one operation, `xfail(name, reason, fn)` one that is
 * expected to fail until a gateway fix lands (it fails when it passes, so the marker is removed).
 */
export function client(facts) {
  const rows = [];
  after(() => {
    const dir = process.env.PORTCULLIS_CLIENT_RESULTS;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    const slug = facts.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const record = { setup: '', limits: '', ...facts, operations: rows };
    writeFileSync(join(dir, `${slug}.json`), `${JSON.stringify(record, null, 2)}\n`);
  });
  return {
    op(name, fn) {
      test(name, async () => {
        try {
          await fn();
        } catch (e) {
          rows.push({ op: name, outcome: 'failed', reason: '' });
          throw e;
        }
        rows.push({ op: name, outcome: 'passed', reason: '' });
      });
    },
    xfail(name, reason, fn) {
      test(`${name} (expected to fail: ${reason})`, async () => {
        try {
          await fn();
        } catch {
          rows.push({ op: name, outcome: 'xfail', reason });
          return;
        }
        rows.push({ op: name, outcome: 'failed', reason: 'passed unexpectedly' });
        throw new Error(`passed although expected to fail (${reason}): remove the xfail marker`);
      });
    },
  };
}
