// Test harness for integration tests: writes a configuration into a fresh
// temporary folder, starts the real enrollbridge binary on a free loopback
// port, and talks to it over real sockets.
import { execFile, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startLb } from './lb.mjs';

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

// ------------------------------------------------------- the backend --
// EB_TEST_BACKEND=pg (with EB_TEST_PG, a libpq DSN of a server the tests
// may create databases on, e.g. from contrib/pg-test.sh) makes writeConfig
// give every configuration a fresh PostgreSQL database and a seal key file;
// anything else keeps the SQLite file in the temporary folder.
export const BACKEND = process.env.EB_TEST_BACKEND === 'pg' ? 'pg' : 'sqlite';
// A PostgreSQL leg without a server: skipped (ctest's SKIP_RETURN_CODE 77)
// for a developer, a failure under CI, where the leg must run.
if (BACKEND === 'pg' && !process.env.EB_TEST_PG) {
  if (process.env.CI) {
    console.error('EB_TEST_BACKEND=pg under CI without EB_TEST_PG: the PostgreSQL leg must run');
    process.exit(1);
  }
  console.error('EB_TEST_BACKEND=pg without EB_TEST_PG: skipped (eval "$(contrib/pg-test.sh start)")');
  process.exit(77);
}

// A database target is PostgreSQL when it is a URI or a key=value DSN.
export const isPgTarget = (db) => typeof db === 'string'
  && (/^postgres(ql)?:\/\//.test(db) || /^\s*[a-z_]+\s*=/.test(db));

let psqlPath;
function psqlBin() {
  if (psqlPath) return psqlPath;
  const dirs = [];
  const pc = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pc.status === 0) dirs.push(pc.stdout.trim());
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    const vs = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of vs) dirs.push(path.join(base, v, 'bin'));
  }
  const hit = dirs.map((d) => path.join(d, 'psql')).find((f) => fs.existsSync(f));
  if (!hit) throw new Error('EB_TEST_BACKEND=pg: no psql (pg_config --bindir, /usr/lib/postgresql/*/bin)');
  psqlPath = hit;
  return hit;
}

function psql(dsn, query) {
  const r = spawnSync(psqlBin(), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', dsn, '-c', query],
    { encoding: 'utf8', timeout: 30000 });
  // the DSN may hold a password: never in an error
  if (r.status !== 0) throw new Error(`psql: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout;
}

// The base DSN with its database replaced by name.
function dsnFor(base, name) {
  if (/^postgres(ql)?:\/\//.test(base)) {
    const u = new URL(base);
    u.pathname = `/${name}`;
    return u.toString();
  }
  return `${base} dbname=${name}`; // libpq: the last dbname wins
}

function pgBase() {
  const base = process.env.EB_TEST_PG;
  if (!base) throw new Error('EB_TEST_BACKEND=pg needs EB_TEST_PG (eval "$(contrib/pg-test.sh start)")');
  return base;
}

const pgDatabases = new Set();
// Drop every database writeConfig created (also done at exit).
export function dropTestDatabases() {
  for (const name of pgDatabases) {
    try {
      psql(pgBase(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch (e) {
      process.stderr.write(`lib: cannot drop ${name}: ${e.message}\n`);
    }
    pgDatabases.delete(name);
  }
}
process.on('exit', dropTestDatabases);

// A fresh, empty PostgreSQL database on EB_TEST_PG (dropped at exit); its DSN.
export function pgDatabase() {
  const base = pgBase();
  const name = `eb_it_${crypto.randomBytes(6).toString('hex')}`;
  psql(base, `CREATE DATABASE ${name}`);
  pgDatabases.add(name);
  return dsnFor(base, name);
}

// Rows of query as objects, from a configuration (writeConfig's answer), a
// SQLite file or a PostgreSQL DSN. On PostgreSQL, count(*) and other
// bigints come back as numbers too (json_agg).
export function sql(target, query) {
  const db = typeof target === 'string' ? target : target.cfg.database;
  if (isPgTarget(db)) {
    const q = query.trim().replace(/;$/, '');
    let wrapped;
    // the row alias must not be a column name: json_agg(t) would take the
    // column t rather than the row
    if (/^(select|with|values|table)\b/i.test(q)) wrapped = `SELECT coalesce(json_agg(eb_row_), '[]') FROM (${q}) eb_row_`;
    else if (/\breturning\b/i.test(q)) wrapped = `WITH eb_row_ AS (${q}) SELECT coalesce(json_agg(eb_row_), '[]') FROM eb_row_`;
    else {
      psql(db, q); // a statement without rows
      return [];
    }
    return JSON.parse(psql(db, wrapped).trim() || '[]');
  }
  const r = spawnSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

// A blob column as upper-case hex in a query, the same text on both
// backends (SQLite's hex(); NULL stays NULL on PostgreSQL, '' on SQLite:
// both falsy). target (a configuration, file or DSN) picks the dialect;
// without it, the backend of this run.
export function hexOf(col, target) {
  const db = target === undefined ? undefined : typeof target === 'string' ? target : target.cfg.database;
  const pg = db === undefined ? BACKEND === 'pg' : isPgTarget(db);
  return pg ? `upper(encode(${col}, 'hex'))` : `hex(${col})`;
}

// A blob literal from hex text, for either dialect (target as for hexOf).
export function blobOf(hex, target) {
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2) throw new Error(`blobOf: not hex: ${hex}`);
  const db = target === undefined ? undefined : typeof target === 'string' ? target : target.cfg.database;
  const pg = db === undefined ? BACKEND === 'pg' : isPgTarget(db);
  return pg ? `decode('${hex}', 'hex')` : `X'${hex}'`;
}

// The database's own consistency check, [] when it finds nothing: SQLite's
// integrity_check; on PostgreSQL amcheck (in a schema of its own, away from
// the bridge's) over every B-tree index (with its heap) and every table.
export function integrityProblems(target) {
  const db = typeof target === 'string' ? target : target.cfg.database;
  if (!isPgTarget(db)) {
    return sql(db, 'pragma integrity_check').map((r) => r.integrity_check).filter((m) => m !== 'ok');
  }
  sql(db, 'CREATE SCHEMA IF NOT EXISTS eb_amcheck; CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA eb_amcheck');
  const idx = sql(db, `select c.relname, eb_amcheck.bt_index_check(c.oid, true)::text as r
    from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
    where am.amname = 'btree' and c.relnamespace = 'public'::regnamespace`);
  if (idx.length === 0) return ['amcheck: no index checked'];
  const heap = sql(db, `select c.relname, v.msg from pg_class c
    cross join lateral eb_amcheck.verify_heapam(c.oid) v
    where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace`);
  return heap.map((r) => `${r.relname}: ${r.msg}`);
}

// Everything the database stores, as text to search for what must never be
// there: the SQLite file's bytes and its WAL's; on PostgreSQL a data-only pg_dump, where
// bytea shows as hex, so contains(needle) looks for the needle as text and
// as hex both.
export function dbContents(target) {
  const db = typeof target === 'string' ? target : target.cfg.database;
  if (!isPgTarget(db)) {
    // in WAL mode the newest pages may still be in the -wal file only
    const bytes = Buffer.concat([db, `${db}-wal`].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f)));
    return { contains: (needle) => bytes.includes(Buffer.from(needle)) };
  }
  const r = spawnSync(path.join(path.dirname(psqlBin()), 'pg_dump'), ['--data-only', '-d', db],
    { encoding: 'utf8', timeout: 30000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`pg_dump: ${(r.stderr || r.error?.message || '').trim()}`);
  const text = r.stdout;
  if (!/COPY public\.signing_keys/.test(text)) throw new Error('pg_dump: no signing_keys data in the dump');
  const lower = text.toLowerCase();
  return {
    contains: (needle) => text.includes(needle) || lower.includes(Buffer.from(needle).toString('hex')),
  };
}

// sql() without blocking the event loop (a sampler next to an in-process
// IdP): resolves with the rows.
export function sqlAsync(target, query) {
  const db = typeof target === 'string' ? target : target.cfg.database;
  const q = query.trim().replace(/;$/, '');
  const run = (bin, args) => new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 30000 }, (e, out, err) => {
      if (e) reject(new Error(`${path.basename(bin)}: ${(err || e.message).trim()}`));
      else resolve(out);
    });
  });
  if (isPgTarget(db)) {
    return run(psqlBin(), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c',
      `SELECT coalesce(json_agg(t), '[]') FROM (${q}) t`]).then((o) => JSON.parse(o.trim() || '[]'));
  }
  return run('sqlite3', ['-json', '-cmd', '.timeout 5000', db, q]).then((o) => (o.trim() ? JSON.parse(o) : []));
}

// Write a configuration; returns { dir, main, tenantsDir, write(tenant), cfg }.
export function writeConfig({ port, tenants, main = {} }) {
  const dir = tmpDir();
  const tenantsDir = path.join(dir, 'tenants');
  fs.mkdirSync(tenantsDir);
  const backend = {};
  if (BACKEND === 'pg' && main.database === undefined) {
    const keyFile = path.join(dir, 'seal.key');
    // 32 bytes as base64 text: secret files refuse a NUL byte and lose a
    // trailing newline, which a raw key may hold
    fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    backend.database = pgDatabase();
    backend.seal_keys = [`file:${keyFile}`];
    backend.database_migrate = true; // serve migrates, as on SQLite
  }
  const cfg = {
    listen: `127.0.0.1:${port}`,
    public_url: `http://127.0.0.1:${port}`,
    database: path.join(dir, 'eb.db'),
    state_dir: path.join(dir, 'state'),
    tenants_dir: 'tenants',
    log: { format: 'json', level: 'debug', access: true },
    ...backend,
    ...main,
  };
  const mainPath = path.join(dir, 'enrollbridge.json');
  fs.writeFileSync(mainPath, JSON.stringify(cfg, null, 2));
  const write = (t) => fs.writeFileSync(path.join(tenantsDir, `${t.id}.json`), JSON.stringify(t, null, 2));
  for (const t of tenants) write(t);
  return { dir, main: mainPath, tenantsDir, write, cfg };
}

// url: where to reach this process (its health check too); public_url by
// default, a replica's own listen address behind the LB.
export async function startBridge(configPath, { env = {}, url: direct } = {}) {
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
  const url = direct ?? cfg.public_url;
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
export function machineInfo({
  family = 'iPhone', product, udid, serial, osVersion, version, canRequestUpdate,
} = {}) {
  const args = ['device-sim', 'machineinfo'];
  if (product) args.push('--product', product); else args.push('--model-family', family);
  if (udid) args.push('--udid', udid);
  if (serial) args.push('--serial', serial);
  if (osVersion) args.push('--os-version', osVersion);
  if (version) args.push('--version', version);
  if (canRequestUpdate !== undefined) args.push('--can-request-update', String(canRequestUpdate));
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

// ------------------------------------------------------------ replicas --

// The sum of one metric's samples whose labels include `labels`, from
// Prometheus text.
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]] = lm[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// n bridge processes on one configuration (writeConfig's answer, its
// public_url the load balancer's address), sharing database, state_dir and
// seal keys; the main file of replica i differs only in `listen`. They start
// at the same time (an empty database sees them race), then a round-robin
// LB (lb.mjs) on public_url's port goes in front. Returns { lb, replicas,
// stop() }; each replica is { i, port, url (direct), main, proc, logs,
// exited, metrics() (its /metrics text), metric(name, labels), kill(signal),
// restart(), stop() }. each(i) may add keys to replica i's main file (say
// its replica_id).
export async function startReplicas(conf, n, { env = {}, each = () => ({}) } = {}) {
  const lbPort = Number(new URL(conf.cfg.public_url).port);
  const replicas = [];
  for (let i = 0; i < n; i += 1) {
    const port = await freePort();
    const main = path.join(conf.dir, `enrollbridge-${i}.json`);
    fs.writeFileSync(main, JSON.stringify({ ...conf.cfg, ...each(i), listen: `127.0.0.1:${port}` }, null, 2));
    replicas.push({ i, port, url: `http://127.0.0.1:${port}`, main });
  }
  const boot = async (r) => {
    const b = await startBridge(r.main, { env, url: r.url });
    Object.assign(r, { proc: b.proc, logs: b.logs, exited: b.exited, bridge: b });
    return r;
  };
  const started = await Promise.allSettled(replicas.map(boot));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(replicas.filter((r) => r.bridge).map((r) => r.bridge.stop('SIGKILL')));
    throw failed.reason;
  }
  for (const r of replicas) {
    r.metrics = async () => (await fetch(`${r.url}/metrics`)).text();
    r.metric = async (name, labels) => metricSum(await r.metrics(), name, labels);
    r.kill = (signal = 'SIGKILL') => r.bridge.stop(signal);
    r.stop = () => r.bridge.stop();
    r.restart = () => boot(r);
    r.waitLog = (re, ms) => r.bridge.waitLog(re, ms);
  }
  const lb = await startLb(replicas.map((r) => r.port), { port: lbPort });
  return {
    lb,
    replicas,
    url: lb.url,
    // SIGTERM to each; resolves with [{ i, code, signal }] (a clean exit is
    // code 0: under the sanitizers a leak or error makes it non-zero).
    async stop() {
      const ends = await Promise.all(replicas.map((r) => r.bridge.stop()));
      await lb.close();
      return ends.map((e, i) => ({ i, ...e }));
    },
  };
}
