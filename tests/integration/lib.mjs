// Test harness for integration tests: writes a configuration into a fresh
// temporary folder, starts the real enrollbridge binary on a free loopback
// port, and talks to it over real sockets.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.EB_BIN ||
  path.resolve(process.env.EB_BINARY_DIR || 'build', 'enrollbridge');
export const SRC = process.env.EB_SOURCE_DIR || process.cwd();

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tmpDir(prefix = 'eb-it-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function baseTenant(id, domains, extra = {}) {
  return {
    id,
    domains,
    enrollment: { default: 'byod', by_model_family: { Mac: 'adde' } },
    auth_method: 'apple-as-web',
    idp: {
      type: 'oidc',
      issuer: 'http://127.0.0.1:9',
      client_id: `client-${id}`,
      client_secret: 'test-secret-value',
    },
    managed_apple_id: { claim: 'email', domain_map: { [domains[0]]: `appleid.${domains[0]}` } },
    ...extra,
  };
}

// Write a configuration; returns { dir, main, tenantsDir, write(tenant) }.
export function writeConfig({ port, tenants, main = {} }) {
  const dir = tmpDir();
  const tenantsDir = path.join(dir, 'tenants');
  fs.mkdirSync(tenantsDir);
  const cfg = {
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    database: path.join(dir, 'eb.db'),
    state_dir: path.join(dir, 'state'),
    tenants_dir: 'tenants',
    log: { format: 'json', level: 'debug', access: true },
    ...main,
  };
  const mainPath = path.join(dir, 'enrollbridge.json');
  fs.writeFileSync(mainPath, JSON.stringify(cfg, null, 2));
  const write = (t) => fs.writeFileSync(path.join(tenantsDir, `${t.id}.json`), JSON.stringify(t, null, 2));
  for (const t of tenants) write(t);
  return { dir, main: mainPath, tenantsDir, write, cfg };
}

export async function startBridge(configPath, { env = {} } = {}) {
  const proc = spawn(BIN, ['serve', '-c', configPath], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = [];
  let buf = '';
  proc.stderr.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      logs.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  proc.stdout.on('data', (d) => logs.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const url = cfg.public_url;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`enrollbridge exited ${proc.exitCode}:\n${logs.join('\n')}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`enrollbridge did not come up:\n${logs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    url,
    logs,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
    async waitLog(re, ms = 5000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const hit = logs.find((l) => re.test(l));
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no log line matching ${re}:\n${logs.join('\n')}`);
    },
  };
}

// Run the CLI synchronously.
export function cli(args, opts = {}) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 30000, ...opts });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Send raw bytes over a socket; resolves with the raw response text (or
// whatever arrived before the server closed), never hangs past ms.
export function raw(port, bytes, ms = 5000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    const done = () => { clearTimeout(t); s.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    const t = setTimeout(done, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('end', done);
    s.on('error', done);
    s.on('connect', () => {
      s.write(bytes, () => {});
    });
  });
}

export function statusOf(rawResponse) {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(rawResponse);
  return m ? Number(m[1]) : 0;
}

// Run the CLI without blocking the event loop (needed when the peer it talks
// to is served from this same process).
export function cliAsync(args, { timeout = 30000, env } = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env: env ? { ...process.env, ...env } : process.env });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

// The CMS-signed MachineInfo a device POSTs to BaseURL, made by
// `enrollbridge device-sim machineinfo` (cached per set of options).
const machineInfoCache = new Map();
export function machineInfo({ family = 'iPhone', product, udid, serial } = {}) {
  const args = ['device-sim', 'machineinfo'];
  if (product) args.push('--product', product); else args.push('--model-family', family);
  if (udid) args.push('--udid', udid);
  if (serial) args.push('--serial', serial);
  const key = args.join(' ');
  if (!machineInfoCache.has(key)) {
    const r = spawnSync(BIN, args, { timeout: 30000 });
    if (r.status !== 0) throw new Error(`device-sim: ${r.stderr}`);
    machineInfoCache.set(key, r.stdout);
  }
  return machineInfoCache.get(key);
}

// The device's first POST to BaseURL.
export function enrollPost(url, opts = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/pkcs7-signature', 'user-agent': 'DeviceManagementClient/1.0', ...(opts.headers ?? {}) },
    body: opts.body ?? machineInfo(opts),
  });
}
