// TLS certificate reload and policy, against the real binary: SIGHUP
// re-reads tls.cert/tls.key (a new handshake gets the new certificate, a
// connection opened before keeps working on the old one), a bad new pair
// keeps the old one with the file and the reason in the log, and
// tls.min_version / tls.priorities are enforced and validated. Throwaway
// certificates (openssl), loopback only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { baseTenant, cli, freePort, startBridge, tmpDir, writeConfig } from './lib.mjs';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // our own throwaway certificates

const dir = tmpDir('eb-tlsr-');
let bridge, port, conf;
const certPath = path.join(dir, 'cert.pem');
const keyPath = path.join(dir, 'key.pem');

// A self-signed P-256 pair named cn: { cert, key } (PEM text).
function makePair(cn, days = 2) {
  const k = path.join(dir, `${cn}.key`);
  const c = path.join(dir, `${cn}.crt`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', k, '-out', c, '-days', String(days), '-subj', `/CN=${cn}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { cert: fs.readFileSync(c, 'utf8'), key: fs.readFileSync(k, 'utf8') };
}

// Put a pair in place the way a renewal tool does (rename over).
function install(pair) {
  fs.writeFileSync(`${certPath}.new`, pair.cert);
  fs.writeFileSync(`${keyPath}.new`, pair.key, { mode: 0o600 });
  fs.renameSync(`${certPath}.new`, certPath);
  fs.renameSync(`${keyPath}.new`, keyPath);
}

// An open TLS connection: { socket, cn }.
function connect(opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      resolve({ socket: s, cn: s.getPeerCertificate().subject?.CN, version: s.getProtocol() });
    });
    s.once('error', reject);
  });
}

// One keep-alive request on an open connection; the status code.
function ask(socket, p = '/healthz') {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d.toString('latin1');
      const end = out.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = out.slice(0, end);
      const m = head.match(/^HTTP\/1\.1 (\d{3})/);
      const len = Number((head.match(/\r\nContent-Length: (\d+)/i) || [0, 0])[1]);
      if (m && out.length >= end + 4 + len) {
        socket.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

async function hup(re) {
  const n = bridge.logs.length;
  bridge.proc.kill('SIGHUP');
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    const hit = bridge.logs.slice(n).find((l) => re.test(l));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no log line matching ${re} after SIGHUP:\n${bridge.logs.slice(n).join('\n')}`);
}

let pairA, pairB;

before(async () => {
  pairA = makePair('cert-a');
  pairB = makePair('cert-b');
  install(pairA);
  port = await freePort();
  conf = writeConfig({
    port,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: { public_url: `https://127.0.0.1:${port}`, tls: { cert: certPath, key: keyPath } },
  });
  bridge = await startBridge(conf.main);
});

after(async () => { await bridge?.stop(); });

test('SIGHUP: new connections get the new certificate, an open one keeps the old', async () => {
  const old = await connect();
  assert.equal(old.cn, 'cert-a');
  assert.equal(await ask(old.socket), 200);
  install(pairB);
  await hup(/new certificate loaded/);
  const fresh = await connect();
  assert.equal(fresh.cn, 'cert-b');
  assert.equal(await ask(fresh.socket), 200);
  // the connection made before the reload is still served
  assert.equal(await ask(old.socket), 200);
  assert.equal(old.socket.getPeerCertificate().subject.CN, 'cert-a');
  old.socket.destroy();
  fresh.socket.destroy();
  // the same files again: nothing to swap, nothing said
  const n = bridge.logs.length;
  await hup(/configuration reloaded/);
  assert.ok(!bridge.logs.slice(n).some((l) => /new certificate loaded/.test(l)));
});

test('SIGHUP with a bad pair: refused with the file and the reason, the current certificate keeps serving', async () => {
  const before = await connect();
  const current = before.cn;
  before.socket.destroy();
  const other = current === 'cert-a' ? pairB : pairA;
  const cases = [
    [{ cert: other.cert, key: makePair('cert-c').key }, certPath, /does not belong to the certificate/, keyPath],
    [{ cert: 'not a certificate\n', key: other.key }, certPath, /no PEM certificate/],
    [{ cert: other.cert, key: 'garbage\n' }, keyPath, /no unencrypted PEM private key/],
  ];
  for (const [pair, file, why, file2] of cases) {
    install(pair);
    const line = await hup(/reload refused/);
    assert.ok(line.includes(file), line);
    if (file2) assert.ok(line.includes(file2), line);
    assert.match(line, why);
    assert.match(line, /tls/);
    const c = await connect();
    assert.equal(c.cn, current, 'the old certificate must keep serving');
    assert.equal(await ask(c.socket), 200);
    c.socket.destroy();
  }
  // an unreadable file
  fs.rmSync(keyPath);
  const line = await hup(/reload refused/);
  assert.ok(line.includes(keyPath) && /cannot read it/.test(line), line);
  install(current === 'cert-a' ? pairA : pairB);
  await hup(/configuration reloaded/);
});

test('tls.min_version: 1.2 by default, 1.3 refuses a TLS 1.2 client', async () => {
  const c12 = await connect({ maxVersion: 'TLSv1.2' });
  assert.equal(c12.version, 'TLSv1.2');
  c12.socket.destroy();
  await assert.rejects(connect({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));

  const p2 = await freePort();
  const conf2 = writeConfig({
    port: p2,
    tenants: [baseTenant('gen', ['generic.test'])],
    main: {
      public_url: `https://127.0.0.1:${p2}`,
      tls: { cert: certPath, key: keyPath, min_version: '1.3', priorities: 'NORMAL:-CHACHA20-POLY1305' },
    },
  });
  const b2 = await startBridge(conf2.main);
  try {
    const saved = port;
    port = p2;
    try {
      const c13 = await connect();
      assert.equal(c13.version, 'TLSv1.3');
      assert.equal(c13.socket.getCipher().name, 'TLS_AES_256_GCM_SHA384');
      c13.socket.destroy();
      await assert.rejects(connect({ maxVersion: 'TLSv1.2' }));
      // the priorities leave out ChaCha20: a client offering only it fails
      await assert.rejects(connect({ ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }));
    } finally {
      port = saved;
    }
  } finally {
    await b2.stop();
  }
});

test('tls policy errors name the file, the key and the reason', () => {
  for (const [tlsCfg, key, why] of [
    [{ min_version: '1.1' }, 'tls.min_version', /"1\.2" or "1\.3"/],
    [{ min_version: 13 }, 'tls.min_version', /string/],
    [{ priorities: 'NORMAL:+VERS-TLS1.0' }, 'tls.priorities', /tls\.min_version sets them/],
    [{ priorities: 'NORMAL:+NO-SUCH-CIPHER' }, 'tls.priorities', /not a GnuTLS priority string \(at "\+NO-SUCH-CIPHER/],
    [{ priorities: '' }, 'tls.priorities', /./],
    [{ ciphers: 'x' }, 'tls.ciphers', /./],
  ]) {
    const cfg = { ...conf.cfg, tls: { cert: certPath, key: keyPath, ...tlsCfg } };
    const p = path.join(conf.dir, 'bad-tls.json');
    fs.writeFileSync(p, JSON.stringify(cfg));
    const out = cli(['check-config', '-c', p]);
    assert.notEqual(out.code, 0, JSON.stringify(tlsCfg));
    assert.ok(out.stderr.includes(`${p}: ${key}: `), `${JSON.stringify(tlsCfg)}: ${out.stderr}`);
    assert.match(out.stderr, why);
  }
});
