/**
 * What the admin reads after a run: a block line gives the failed logins
 * that caused this block, not the address's lifetime count (a second block
 * said "12 failed logins" for a window of 6); `scan` does not report the
 * twin lines of one attempt (errors log and userlogins) as counted.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendLines, at, burst, cli, f1, f2, nowEnv, oneLogConfig, setup} from '../helpers/env.js'

test('a second block of an address says the failures of this block, not every failure it ever made', async (t) => {
  const s = setup(t)
  oneLogConfig(s, {blockMinutes: 30})
  appendLines(s.log, burst(at(20), '203.0.113.9', 6))
  const first = await cli(['hacks', '--config', s.config], {env: nowEnv(23)})
  assert.equal(first.exitCode, 0, first.stderr)
  assert.match(first.stdout, /^blocked 203\.0\.113\.9 on master until \S+ \S+ by 6 failures within 10 min \(6 failed logins, last user "alice@example\.com"\)$/m)
  // The block ends (30 min), the address comes back with 6 more: its second block.
  appendLines(s.log, burst(at(60), '203.0.113.9', 6))
  const second = await cli(['hacks', '--config', s.config], {env: nowEnv(63)})
  assert.equal(second.exitCode, 0, second.stderr)
  assert.match(second.stdout, /^blocked 203\.0\.113\.9 on master until \S+ \S+ by 6 failures within 10 min \(6 failed logins, last user "alice@example\.com"\)$/m)
  // The lifetime count is still there for whoever wants it: list says 12 attempts (what the old line said).
  const list = await cli(['list', '--json', '--config', s.config], {env: nowEnv(63)})
  const entry = (JSON.parse(list.stdout) as {ip: string; attempts: number}[]).find((e) => e.ip === '203.0.113.9')
  assert.equal(entry?.attempts, 12)
})

test('scan counts an attempt once: the twin line in the other log is reported as such, not as counted', async (t) => {
  const s = setup(t)
  // Three attempts, each written to both logs (the same session), and one userlogins line alone (error 1).
  for (let i = 0; i < 3; i++) {
    const sp = `s${i}abcdef`
    appendLines(s.errorsLog, [f1(at(0, i * 10), '198.51.100.4', 'bob@example.com', sp)])
    appendLines(s.log, [f2(at(0, i * 10), '198.51.100.4', 'bob@example.com', 0, sp)])
  }
  appendLines(s.log, [f2(at(1), '198.51.100.5', 'eve@example.com', 1)])
  const r = await cli(['scan', '--dry-run', '--verbose', '--config', s.config], {env: nowEnv(2)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^7 failed-login line\(s\) recognised, 4 counted against an address \(3 twin line\(s\) of an attempt already counted\), from 2 address\(es\)$/m)
})

test('list into a pipe is plain aligned text: no box-drawing characters, no colour codes', async (t) => {
  const s = setup(t)
  oneLogConfig(s)
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  assert.equal((await cli(['hacks', '--config', s.config], {env: nowEnv(3)})).exitCode, 0)
  const r = await cli(['list', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /^203\.0\.113\.9 +blocked +6 /m)
  assert.doesNotMatch(r.stdout, /[\u2500-\u257f]|\u001b\[/, 'a pipe gets no box characters and no escape sequences')
})
