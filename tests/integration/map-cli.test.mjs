// enrollbridge map set|unset|list (issue 13, section 6): mapping overrides
// written through the store (SQLite, or PostgreSQL with
// EB_TEST_BACKEND=pg), reaching a running bridge at the next sign-in; the
// dry run (map --claims) unchanged; clear errors and exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  enroll, freePort, idpReset, oidcTenant, sql, startTestIdp, startWorld, stopAll,
} from './idp.mjs';
import { cli } from './lib.mjs';

let idp;
let world;
let bridge;
let db;
let main;

const DEFAULT = 'user1@appleid.generic.test';
const OTHER = 'other.one@appleid.generic.test';

before(async () => {
  const port = await freePort();
  idp = await startTestIdp();
  world = await startWorld(port, [oidcTenant(`http://127.0.0.1:${port}`, idp, 'gen')]);
  ({ bridge, db } = world);
  main = world.config.main;
});

after(async () => {
  await stopAll(bridge, idp);
});

const map = (...args) => cli(['map', ...args]);
const edit = (op, ...args) => map(op, '-c', main, '--tenant', 'gen', ...args);

async function signIn() {
  await idpReset(idp);
  const before = new Set(sql(db, "select id from grants where tenant='gen'").map((g) => g.id));
  const r = await enroll({ bridge, tenant: 'gen', login: 'user1' });
  assert.equal(r.status, 308, `${r.stage} ${r.status} ${r.body?.slice(0, 300)}`);
  const fresh = sql(db, "select * from grants where tenant='gen'").filter((g) => !before.has(g.id));
  assert.equal(fresh.length, 1);
  return fresh[0];
}

test('no override: the domain_map rule; list is empty', async () => {
  const g = await signIn();
  assert.equal(g.managed_apple_id, DEFAULT);
  assert.equal(g.idp_subject, 'user1');
  const l = edit('list');
  assert.equal(l.code, 0, l.stderr);
  assert.equal(l.stdout, '');
});

test('map set: listed, and the running bridge uses it at the next sign-in', async () => {
  const s = edit('set', '--subject', 'user1', '--apple-id', OTHER, '--note', 'moved <desk> & co');
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /user1 -> other\.one@appleid\.generic\.test/);
  const l = edit('list');
  assert.equal(l.code, 0, l.stderr);
  assert.equal(l.stdout, `user1 ${OTHER} moved <desk> & co\n`);
  const j = edit('list', '--json');
  assert.equal(j.code, 0, j.stderr);
  const rows = j.stdout.trim().split('\n').map((x) => JSON.parse(x));
  assert.equal(rows.length, 1);
  assert.equal(rows[0].tenant, 'gen');
  assert.equal(rows[0].subject, 'user1');
  assert.equal(rows[0].managed_apple_id, OTHER);
  assert.equal(rows[0].note, 'moved <desk> & co');
  assert.ok(Number.isInteger(rows[0].created_at) && rows[0].created_at > 0);
  const g = await signIn();
  assert.equal(g.managed_apple_id, OTHER);
});

test('map set again replaces the override (one row, no note); the dry run sees it', async () => {
  const s = edit('set', '--subject', 'user1', '--apple-id', 'third@appleid.generic.test');
  assert.equal(s.code, 0, s.stderr);
  assert.equal(edit('list').stdout, 'user1 third@appleid.generic.test\n');
  const j = JSON.parse(edit('list', '--json').stdout);
  assert.equal(j.note, null);
  // the dry run, unchanged in its form, reads the same store
  const claims = path.join(path.dirname(main), 'claims.json');
  fs.writeFileSync(claims, JSON.stringify({ iss: idp.issuer, sub: 'user1', email: 'user1@generic.test' }));
  const d = map('-c', main, '--tenant', 'gen', '--claims', claims);
  assert.equal(d.code, 0, d.stdout + d.stderr);
  assert.match(d.stdout, /^managed_apple_id: third@appleid\.generic\.test$/m);
  assert.match(d.stdout, /^decision: allow$/m);
});

test('map unset: removed, the next sign-in is back to the rule; a second unset is exit 1', async () => {
  const u = edit('unset', '--subject', 'user1');
  assert.equal(u.code, 0, u.stderr);
  assert.equal(edit('list').stdout, '');
  const g = await signIn();
  assert.equal(g.managed_apple_id, DEFAULT);
  const again = edit('unset', '--subject', 'user1');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no override for "user1"/);
});

test('bad input: exit 2 with a clear message, nothing written', async () => {
  const cases = [
    [['set', '-c', main, '--tenant', 'nope', '--subject', 'x', '--apple-id', OTHER], /no tenant "nope"/],
    [['set', '-c', main, '--tenant', 'gen', '--apple-id', OTHER], /--subject is required/],
    [['set', '-c', main, '--tenant', 'gen', '--subject', 'x'], /--apple-id is required/],
    [['set', '-c', main, '--tenant', 'gen', '--subject', 'x', '--apple-id', 'not-an-address'], /not an address/],
    [['set', '-c', main, '--tenant', 'gen', '--subject', 'x', '--apple-id', OTHER, '--note', 'a\nb'], /control characters/],
    [['set', '-c', main, '--tenant', 'gen', '--subject', '', '--apple-id', OTHER], /--subject: must be 1 to/],
    [['set', '-c', main, '--tenant', 'gen', '--subject', 'x', '--apple-id', OTHER, '--json'], /--json is not an option here/],
    [['unset', '-c', main, '--tenant', 'gen', '--subject', 'x', '--apple-id', OTHER], /--apple-id is not an option here/],
    [['list', '--tenant', 'gen'], /-c and --tenant are required/],
    [['list', '-c', main, '--tenant'], /--tenant needs a value/],
    [['list', '-c', '/nonexistent/eb.json', '--tenant', 'gen'], /nonexistent/],
  ];
  for (const [args, re] of cases) {
    const r = map(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.equal(edit('list').stdout, '');
  assert.equal(map('set', '--help').code, 0);
});

test('the bridge stops cleanly', async () => {
  const { code, signal } = await bridge.stop();
  assert.equal(signal, null);
  assert.equal(code, 0, bridge.logs.slice(-20).join('\n'));
});
