// `enrollbridge discover`: checks a deployment the way a device does. Run
// against the real bridge (everything passes) and against deliberately
// misconfigured servers (each mistake is named, with a hint, exit 1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { baseTenant, cli, cliAsync, freePort, startBridge, writeConfig } from './lib.mjs';

let bridge;

before(async () => {
  const port = await freePort();
  const { main } = writeConfig({
    port,
    tenants: [
      baseTenant('contoso', ['contoso.example']),
      baseTenant('oauthco', ['oauth.example'], { auth_method: 'apple-oauth2' }),
    ],
  });
  bridge = await startBridge(main);
});
after(async () => { await bridge?.stop(); });

test('a correct deployment passes every check (apple-as-web)', () => {
  const r = cli(['discover', 'alice@contoso.example', '--base', bridge.url]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /^FAIL/m);
  assert.match(r.stdout, /^PASS .*status/im);
  assert.match(r.stdout, /^PASS .*content.type/im);
  assert.match(r.stdout, /apple-as-web/);
});

test('a correct deployment passes every check (apple-oauth2)', () => {
  const r = cli(['discover', 'bob@oauth.example', '--base', bridge.url, '--model-family', 'Mac']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /apple-oauth2/);
  assert.match(r.stdout, /mdm-adde/);
});

test('a refused user is reported with Apple\'s message', () => {
  const r = cli(['discover', 'eve@unknown.example', '--base', bridge.url]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^FAIL/m);
  assert.match(r.stdout, /com\.apple\.well-known\.failed/);
});

test('malformed identifiers are a usage error', () => {
  assert.equal(cli(['discover', 'a@b@c.example', '--base', bridge.url]).code, 2);
  assert.equal(cli(['discover']).code, 2);
});

// A fake deployment whose mistakes are chosen per test.
async function fake(handler) {
  const srv = http.createServer(handler);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return { url, close: () => new Promise((r) => srv.close(r)) };
}

function discoveryBody(base, servers = 1, version = 'mdm-byod') {
  return JSON.stringify({ Servers: Array.from({ length: servers }, () => ({ Version: version, BaseURL: `${base}/enroll` })) });
}

function challenge(res) {
  res.writeHead(401, { 'WWW-Authenticate': 'Bearer method="apple-as-web", url="https://bridge.example/t/x/auth/abc"' });
  res.end();
}

test('a charset on the content type fails, with the Sign-in Failed hint', async () => {
  const f = await fake((req, res) => {
    if (req.method === 'POST') return challenge(res);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(discoveryBody(`http://127.0.0.1:${req.socket.localPort}`));
  });
  try {
    const r = await cliAsync(['discover', 'alice@contoso.example', '--base', f.url]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^FAIL .*content.type/im);
    assert.match(r.stdout, /hint:.*Sign-in Failed/i);
  } finally { await f.close(); }
});

test('two server entries fail', async () => {
  const f = await fake((req, res) => {
    if (req.method === 'POST') return challenge(res);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(discoveryBody(`http://127.0.0.1:${req.socket.localPort}`, 2));
  });
  try {
    const r = await cliAsync(['discover', 'alice@contoso.example', '--base', f.url]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL/m);
    assert.match(r.stdout, /one/i);
  } finally { await f.close(); }
});

test('a BaseURL that answers 200 instead of the 401 challenge fails', async () => {
  const f = await fake((req, res) => {
    if (req.method === 'POST') { res.writeHead(200, { 'Content-Type': 'text/plain' }); return res.end('ok'); }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(discoveryBody(`http://127.0.0.1:${req.socket.localPort}`));
  });
  try {
    const r = await cliAsync(['discover', 'alice@contoso.example', '--base', f.url]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL .*401/im);
  } finally { await f.close(); }
});

test('an unquoted or lower-case challenge fails the strict check', async () => {
  const f = await fake((req, res) => {
    if (req.method === 'POST') {
      res.writeHead(401, { 'WWW-Authenticate': 'bearer method=apple-as-web,url="https://bridge.example/x"' });
      return res.end();
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(discoveryBody(`http://127.0.0.1:${req.socket.localPort}`));
  });
  try {
    const r = await cliAsync(['discover', 'alice@contoso.example', '--base', f.url]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL challenge: .*exact form.*not spelled exactly "Bearer".*not quoted/m);
    assert.match(r.stdout, /hint: .*WWW-Authenticate: Bearer method="apple-as-web"/);
  } finally { await f.close(); }
});

test('a dead deployment fails cleanly', async () => {
  const port = await freePort();
  const r = cli(['discover', 'alice@contoso.example', '--base', `http://127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^FAIL/m);
});
