// The configuration reference is complete and every shipped configuration
// is valid: each key the parser accepts (`enrollbridge config-keys`, the
// very lists the parser checks objects against) is documented in
// docs/configuration.md and described in docs/config.schema.json, and every
// example and demo configuration validates against that schema and passes
// `enrollbridge check-config`. Needs ajv (npm ci in tests/docs); under
// CI=true its absence fails the test instead of skipping it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SRC = process.env.EB_SOURCE_DIR;
const BIN = process.env.EB_BIN;
const DOC = 'docs/configuration.md';
const SCHEMA = 'docs/config.schema.json';
// where the two files' keys are documented, and their schema definitions
const SECTION = { main: '## Main file keys', tenant: '## Tenant file keys' };

function acceptedKeys() {
  const out = execFileSync(BIN, ['config-keys'], { encoding: 'utf8' });
  const keys = out.trim().split('\n').map((l) => {
    const [file, key] = l.split('\t');
    return { file, key };
  });
  assert.ok(keys.length > 100, `config-keys printed only ${keys.length} keys`);
  return keys;
}

// The text of the section of the reference that documents file's keys.
function section(md, file) {
  const start = md.indexOf(`\n${SECTION[file]}\n`);
  assert.ok(start >= 0, `${DOC} has no "${SECTION[file]}" heading`);
  const next = md.indexOf('\n## ', start + 1);
  return md.slice(start, next < 0 ? md.length : next);
}

// The schema node for a key path ("mdm.clients[].client_id") of a file.
function schemaNode(schema, file, key) {
  const resolve = (n) => {
    while (n && (n.$ref || (n.allOf && n.allOf[0].$ref)))
      n = n.$ref ? schema.$defs[n.$ref.replace('#/$defs/', '')]
        : schema.$defs[n.allOf[0].$ref.replace('#/$defs/', '')];
    return n;
  };
  let node = schema.$defs[file];
  for (const part of key.split('.')) {
    const list = part.endsWith('[]');
    const name = list ? part.slice(0, -2) : part;
    node = resolve(node);
    node = node?.properties?.[name];
    if (node && list) node = resolve(node).items;
    if (!node) return null;
  }
  return node;
}

test('every key the parser accepts is in docs/configuration.md and the schema', () => {
  const md = fs.readFileSync(path.join(SRC, DOC), 'utf8');
  const schema = JSON.parse(fs.readFileSync(path.join(SRC, SCHEMA), 'utf8'));
  const missing = [];
  for (const { file, key } of acceptedKeys()) {
    if (!section(md, file).includes('`' + key + '`'))
      missing.push(`${file} file key "${key}": not documented in ${DOC}; add a row ` +
        `\`${key}\` (type, default, allowed, example, meaning) under "${SECTION[file]}"`);
    if (!schemaNode(schema, file, key))
      missing.push(`${file} file key "${key}": missing from ${SCHEMA}; add it under ` +
        `$defs.${file}${key.split('.').map((p) => p.endsWith('[]')
          ? `.properties.${p.slice(0, -2)}.items` : `.properties.${p}`).join('')} (in the $defs entry a $ref on that path points to)`);
  }
  assert.deepEqual(missing, [], '\n' + missing.join('\n'));
});

test('the schema has no key the parser refuses', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(SRC, SCHEMA), 'utf8'));
  const accepted = new Set(acceptedKeys().map(({ file, key }) => `${file}\t${key}`));
  const extra = [];
  const walk = (file, node, prefix) => {
    if (!node) return;
    if (node.$ref && node.$ref !== `#/$defs/${file}`) return; // shared objects: walked once
    if (node.type === 'array' && node.items?.properties) walk(file, node.items, prefix + '[]');
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (!accepted.has(`${file}\t${key}`)) extra.push(`${file} file key "${key}" in ${SCHEMA}`);
      walk(file, v, key);
    }
  };
  walk('main', schema.$defs.main, '');
  walk('tenant', schema.$defs.tenant, '');
  for (const d of ['enrollment', 'mdm', 'esso']) walk('tenant', schema.$defs[d], d);
  assert.deepEqual(extra, [], 'the parser does not accept:\n' + extra.join('\n'));
});

// Every JSON configuration shipped in the tree: main files carry public_url.
function configFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(SRC, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.json') && rel !== SCHEMA) out.push(rel);
    }
  };
  for (const dir of ['config', 'docs']) walk(dir);
  return out.map((rel) => {
    const doc = JSON.parse(fs.readFileSync(path.join(SRC, rel), 'utf8'));
    return { rel, doc, file: 'public_url' in doc ? 'main' : 'tenant' };
  });
}

async function loadAjv(t) {
  try {
    const { default: Ajv2020 } = await import(path.join(SRC, 'tests/docs/node_modules/ajv/dist/2020.js'));
    return Ajv2020.default ?? Ajv2020;
  } catch (e) {
    if (process.env.CI === 'true')
      throw new Error(`ajv is not installed (cd tests/docs && npm ci): ${e.message}`);
    t.skip('ajv is not installed: run npm ci in tests/docs');
    return null;
  }
}

test('every example and demo configuration validates against the schema', async (t) => {
  const Ajv = await loadAjv(t);
  if (!Ajv) return;
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  const schema = JSON.parse(fs.readFileSync(path.join(SRC, SCHEMA), 'utf8'));
  ajv.addSchema(schema);
  const files = configFiles();
  assert.ok(files.some((f) => f.file === 'main') && files.filter((f) => f.file === 'tenant').length >= 4,
    `too few configurations found: ${files.map((f) => f.rel).join(', ')}`);
  const bad = [];
  for (const { rel, doc, file } of files) {
    const validate = ajv.getSchema(`${schema.$id}#/$defs/${file}`);
    if (!validate(doc))
      bad.push(`${rel} (${file} file): ` + validate.errors.map((e) =>
        `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; '));
  }
  assert.deepEqual(bad, [], '\n' + bad.join('\n'));
  // the schema is not a rubber stamp: an unknown key and a wrong type fail
  const v = ajv.getSchema(`${schema.$id}#/$defs/tenant`);
  const demo = files.find((f) => f.file === 'tenant').doc;
  assert.equal(v({ ...demo, colour: 1 }), false);
  assert.equal(v({ ...demo, tokens: { access_ttl: '1h' } }), false);
  assert.equal(ajv.getSchema(`${schema.$id}#/$defs/main`)({ listen: '127.0.0.1:1' }), false);
});

// A value for each "env:NAME" a configuration names: 32 random bytes in
// base64 for seal keys, a DSN for database, else a long random string.
function envFor(docs) {
  const env = { ...process.env };
  const text = docs.map((d) => JSON.stringify(d)).join('\n');
  for (const [, name] of text.matchAll(/"env:([A-Za-z_][A-Za-z0-9_]*)"/g)) {
    if (/SEAL/.test(name)) env[name] = randomBytes(32).toString('base64');
    else if (/DATABASE|DSN/.test(name)) env[name] = 'postgresql://eb@127.0.0.1:1/eb';
    else env[name] = randomBytes(24).toString('hex');
  }
  return env;
}

function checkConfig(configPath, env) {
  const r = spawnSync(BIN, ['check-config', '-c', configPath], { encoding: 'utf8', env, timeout: 60000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`.trim() };
}

test('every example and demo configuration passes enrollbridge check-config', () => {
  const files = configFiles();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eb-docs-'));
  try {
    const bad = [];
    const mains = files.filter((f) => f.file === 'main');
    const tenantDirs = new Set();
    for (const m of mains) {
      // a main file with its own tenants_dir, checked as it is, but with
      // state_dir (which must be private) in a throwaway folder
      const dir = path.dirname(path.join(SRC, m.rel));
      const tdir = path.resolve(dir, m.doc.tenants_dir ?? 'tenants');
      const doc = { ...m.doc, state_dir: path.join(tmp, `state-${mains.indexOf(m)}`), tenants_dir: tdir };
      if (typeof doc.database === 'string' && !doc.database.startsWith('env:') && !/^postgres/.test(doc.database))
        doc.database = path.join(doc.state_dir, 'eb.db');
      if (!fs.existsSync(tdir)) tenantDirs.add(null); else tenantDirs.add(tdir);
      const tenants = fs.existsSync(tdir) ? fs.readdirSync(tdir).filter((n) => n.endsWith('.json')) : [];
      if (tenants.length === 0) {
        // no tenant folder shipped: check it with the example tenants
        doc.tenants_dir = path.join(SRC, 'config/examples');
      }
      const p = path.join(tmp, `main-${mains.indexOf(m)}.json`);
      fs.writeFileSync(p, JSON.stringify(doc));
      const docs = [doc, ...fs.readdirSync(doc.tenants_dir).filter((n) => n.endsWith('.json'))
        .map((n) => JSON.parse(fs.readFileSync(path.join(doc.tenants_dir, n), 'utf8')))];
      const r = checkConfig(p, envFor(docs));
      if (!r.ok) bad.push(`${m.rel}: ${r.out}`);
      tenantDirs.add(doc.tenants_dir);
    }
    // tenant files in a folder no main file names: under a minimal main file
    const loose = new Set(files.filter((f) => f.file === 'tenant' &&
      !tenantDirs.has(path.dirname(path.join(SRC, f.rel)))).map((f) => path.dirname(path.join(SRC, f.rel))));
    for (const tdir of loose) {
      const p = path.join(tmp, `loose-${path.basename(tdir)}.json`);
      fs.writeFileSync(p, JSON.stringify({ public_url: 'https://enroll.example.com',
        state_dir: path.join(tmp, `state-${path.basename(tdir)}`), tenants_dir: tdir }));
      const docs = fs.readdirSync(tdir).filter((n) => n.endsWith('.json'))
        .map((n) => JSON.parse(fs.readFileSync(path.join(tdir, n), 'utf8')));
      const r = checkConfig(p, envFor(docs));
      if (!r.ok) bad.push(`${path.relative(SRC, tdir)}/*.json: ${r.out}`);
    }
    assert.deepEqual(bad, [], '\n' + bad.join('\n'));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// The guides and the README name only keys the parser accepts and commands
// the binary has: every `a.b.c` code span whose first part is an object of
// either file, and every "enrollbridge COMMAND" in code.
test('the guides name only real keys and commands', () => {
  const keys = acceptedKeys();
  const known = new Set(keys.map(({ key }) => key));
  const objects = new Set(keys.filter(({ key }) => key.includes('.')).map(({ key }) => key.split('.')[0].replace('[]', '')));
  const docs = fs.readdirSync(path.join(SRC, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`);
  docs.push('README.md');
  const bad = [];
  const commands = new Map();
  for (const rel of docs) {
    const text = fs.readFileSync(path.join(SRC, rel), 'utf8');
    // code: fenced blocks, indented lines and spans, but for the names of
    // audit events ("the audit event `access.lost`"), which look like keys
    const code = [...text.matchAll(/```[^\n]*\n([\s\S]*?)```|`([^`\n]+)`|^(?: {4}|\t)(.+)$/gm)]
      .filter((m) => !/(event[s]?|audited as)\s*$/i.test(text.slice(Math.max(0, m.index - 30), m.index)))
      .map((m) => m[1] ?? m[2] ?? m[3]);
    const prefixes = new Set([...known].flatMap((k) => k.split('.').map((_, i, a) => a.slice(0, i + 1).join('.'))));
    for (const c of code) {
      for (const [k] of c.matchAll(/^[a-z_]+(?:\[\])?(?:\.[A-Za-z_]+(?:\[\])?)+$/g)) {
        // "routes[].mdm.upstream": a route's sections take the tenant's keys
        const norm = k.replace(/^routes\[\]\.(enrollment|mdm|esso)\./, '$1.');
        if (objects.has(k.split('.')[0].replace('[]', '')) && !prefixes.has(k) && !prefixes.has(norm))
          bad.push(`${rel}: \`${k}\` is not a key the parser accepts`);
      }
      for (const [, cmd] of c.matchAll(/(?:^|[\s$])enrollbridge ([a-z][a-z-]+)/g))
        if (!commands.has(cmd)) commands.set(cmd, rel);
    }
  }
  for (const [cmd, rel] of commands) {
    const r = spawnSync(BIN, [cmd, '--help'], { encoding: 'utf8', timeout: 10000 });
    if (/unknown command/.test(r.stderr)) bad.push(`${rel}: "enrollbridge ${cmd}" is not a command`);
  }
  assert.ok(commands.size >= 8, `only ${commands.size} commands found in the guides`);
  assert.deepEqual(bad, [], '\n' + bad.join('\n'));
});
