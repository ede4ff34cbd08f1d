// enrollbridge(8): the build makes it from the binary's --help (help2man);
// it must render without a groff warning and list every subcommand that
// --help lists, in the current binary's words. Under CI=true a missing
// help2man (no page built), groff or man fails instead of skipping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const BIN = process.env.EB_BIN;
const PAGE = path.join(process.env.EB_BINARY_DIR, 'enrollbridge.8');

function need(t, what, ok) {
  if (ok) return true;
  if (process.env.CI === 'true') assert.fail(`${what} is missing (contrib/install-deps.sh installs it)`);
  t.skip(`${what} is missing`);
  return false;
}

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

// "  enrollbridge NAME ..." lines of --help: the documented subcommands
function helpCommands() {
  const help = execFileSync(BIN, ['--help'], { encoding: 'utf8' });
  const names = [...help.matchAll(/^ {2}enrollbridge ([a-z][a-z-]*)/gm)].map((m) => m[1]);
  return { help, names: [...new Set(names)] };
}

test('the manual page renders without warnings', (t) => {
  if (!need(t, `the manual page ${PAGE} (help2man at build time)`, fs.existsSync(PAGE))) return;
  if (!need(t, 'groff', have('groff'))) return;
  const g = spawnSync('groff', ['-man', '-ww', '-z', '-Tutf8', PAGE], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stderr, '', `groff warnings:\n${g.stderr}`);
  if (!need(t, 'man', have('man'))) return;
  const m = spawnSync('man', ['--warnings', '-l', PAGE], {
    encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' },
  });
  assert.equal(m.status, 0, m.stderr);
  assert.equal(m.stderr, '', `man warnings:\n${m.stderr}`);
  assert.match(m.stdout, /ENROLLBRIDGE\(8\)/);
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'CONFIGURATION', 'SIGNALS', 'FILES', 'SEE ALSO'])
    assert.match(m.stdout, new RegExp(`^${s}$`, 'm'), `section ${s}`);
});

test('the manual page lists every subcommand, as the binary describes it', (t) => {
  if (!need(t, `the manual page ${PAGE} (help2man at build time)`, fs.existsSync(PAGE))) return;
  const { help, names } = helpCommands();
  for (const c of ['serve', 'check-config', 'migrate', 'discover', 'device-sim', 'map', 'keys',
    'reseal', 'grants', 'import-sqlite', 'version'])
    assert.ok(names.includes(c), `--help does not list "${c}"`);
  const roff = fs.readFileSync(PAGE, 'utf8').replace(/\\-/g, '-').replace(/\\fB|\\fI|\\fR|\\fP|\\,|\\\//g, '');
  const missing = names.filter((n) => !roff.includes(`enrollbridge ${n}`));
  assert.deepEqual(missing, [], `not in ${PAGE}: rebuild it (cmake --build) or fix docs/enrollbridge.8.h2m`);
  // the page is the current --help: each synopsis line, word for word
  const stale = help.split('\n').filter((l) => /^ {2}enrollbridge /.test(l))
    .map((l) => l.trim()).filter((l) => !roff.replace(/\s+/g, ' ').includes(l.replace(/\s+/g, ' ')));
  assert.deepEqual(stale, [], 'the manual page is older than --help');
});
