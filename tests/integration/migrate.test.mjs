// Migrations (issue 12, item 7), against the real binary: `enrollbridge
// migrate -c FILE` creates the schema and prints each applied migration,
// then "up to date"; `serve` with database_migrate: false refuses an empty
// database, naming the pending versions and `enrollbridge migrate`, and
// serves once it is migrated; two `serve` processes started at the same
// moment on one empty database (migrating, the default) both come up.
// Loopback only; every process is stopped by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BACKEND, baseTenant, cli, cliAsync, freePort, sql, startBridge, writeConfig } from './lib.mjs';

// PostgreSQL: the tables the bridge's schema holds so far
const publicTables = (conf) => sql(conf, `select table_name as t from information_schema.tables
  where table_schema = 'public' order by 1`).map((r) => r.t);

const tenant = () => baseTenant('acme', ['acme.example']);

test('migrate creates the schema, prints the versions, then is up to date', () => {
  const conf = writeConfig({ port: 9, tenants: [tenant()] });
  const r = cli(['migrate', '-c', conf.main]);
  assert.equal(r.code, 0, r.stderr);
  const applied = r.stdout.split('\n').filter((l) => l.startsWith('applied migration '));
  assert.ok(applied.length >= 5, r.stdout);
  assert.match(applied[0], /^applied migration 1: initial schema$/);
  applied.forEach((l, i) => assert.match(l, new RegExp(`^applied migration ${i + 1}: .+`)));
  const last = applied.length;
  assert.match(r.stdout, new RegExp(`^schema version ${last}$`, 'm'));
  if (BACKEND === 'pg') assert.equal(publicTables(conf).includes('schema_migrations'), true);
  else assert.ok(fs.statSync(conf.cfg.database).size > 0);

  const again = cli(['migrate', '-c', conf.main]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, `schema version ${last}: up to date\n`);
});

test('migrate names a bad config and exits 1', () => {
  const conf = writeConfig({ port: 9, tenants: [tenant()], main: { database_migrate: 'yes' } });
  const r = cli(['migrate', '-c', conf.main]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /database_migrate: must be true or false/);
  assert.equal(r.stdout, '');
});

test('migrate names a database it cannot use and exits 1', () => {
  const conf = writeConfig({ port: 9, tenants: [tenant()] });
  if (BACKEND === 'pg') {
    // a server that answers, a database that does not exist
    const cfg = JSON.parse(fs.readFileSync(conf.main, 'utf8'));
    cfg.database = `${cfg.database} dbname=eb_it_absent_${process.pid}`;
    fs.writeFileSync(conf.main, JSON.stringify(cfg, null, 2));
  } else {
    fs.writeFileSync(conf.cfg.database, 'this is not a database, just enough bytes to be read as one.'.repeat(40));
  }
  const r = cli(['migrate', '-c', conf.main]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /migrate: .*database: store: /);
  assert.equal(r.stdout, '');
});

test('serve with database_migrate false refuses pending migrations, serves after migrate', async () => {
  const port = await freePort();
  const conf = writeConfig({ port, tenants: [tenant()], main: { database_migrate: false } });
  const r = await cliAsync(['serve', '-c', conf.main], { timeout: 15000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /schema version 0 and migrations 1-\d+ pending; database_migrate is false: run `enrollbridge migrate -c FILE`/);

  // the CLI commands that open the store follow the same key
  const keys = cli(['keys', 'list', '-c', conf.main]);
  assert.equal(keys.code, 1);
  assert.match(keys.stderr, /pending; database_migrate is false/);

  const m = cli(['migrate', '-c', conf.main]);
  assert.equal(m.code, 0, m.stderr);
  const b = await startBridge(conf.main);
  try {
    const h = await fetch(`${b.url}/healthz`);
    assert.equal(h.status, 200);
  } finally {
    await b.stop();
  }
});

test('two serve processes on one empty database both come up', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const conf = writeConfig({ port: p1, tenants: [tenant()] });
  const second = JSON.parse(fs.readFileSync(conf.main, 'utf8'));
  second.listen = `127.0.0.1:${p2}`;
  second.public_url = `http://127.0.0.1:${p2}`;
  const main2 = path.join(conf.dir, 'second.json');
  fs.writeFileSync(main2, JSON.stringify(second));
  if (BACKEND === 'pg') assert.deepEqual(publicTables(conf), [], 'the database starts empty');
  else assert.equal(fs.existsSync(conf.cfg.database), false);

  const started = await Promise.allSettled([startBridge(conf.main), startBridge(main2)]);
  try {
    for (const s of started) assert.equal(s.status, 'fulfilled', String(s.reason));
    for (const s of started) {
      const h = await fetch(`${s.value.url}/healthz`);
      assert.equal(h.status, 200);
    }
    // exactly one of them applied each migration
    const applied = started.flatMap((s) => s.value.logs.filter((l) => l.includes('applied migration 1 ')));
    assert.equal(applied.length, 1, applied.join('\n'));
  } finally {
    await Promise.all(started.filter((s) => s.status === 'fulfilled').map((s) => s.value.stop()));
  }
  const m = cli(['migrate', '-c', conf.main]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /up to date/);
});
