/**
 * Adversarial review (wt-adv): holes in rcguard's first promise, each failed
 * login counts exactly once against the address that really sent it. Every
 * test here failed on the code it was written against (a21218d); each names
 * how Roundcube (or the plugin, or a local user) really writes its bytes.
 *
 * Addresses: 127.0.x.y / 198.51.100.x are the attacker's real ones;
 * 203.0.113.x are victims named only in text the attacker chose.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {cliJson, setup} from '../helpers/env.js'
import type {EventJson} from '../../src/ui/json-stream.js'

/** What `scan --json` prints: its events, as the command writes them, and the warnings. */
type ScanEvent = EventJson

interface ScanJson {
  events: ScanEvent[]
  warnings: string[]
}

/** `scan --dry-run --replay --log FILE` of these lines (one log, its format detected). */
async function replay(t: {after: (fn: () => void) => void}, lines: string[], config: Record<string, unknown> = {}): Promise<ScanJson> {
  const s = setup(t, config)
  const file = join(s.dir, 'test.log')
  writeFileSync(file, `${lines.join('\n')}\n`)
  return cliJson<ScanJson>(['scan', '--dry-run', '--replay', '--log', file, '--config', s.config])
}

/** `scan --dry-run` of an instance reading its errors and userlogins logs (the default set-up). */
async function scanBoth(t: {after: (fn: () => void) => void}, errors: string[], userlogins: string[], config: Record<string, unknown> = {}): Promise<ScanJson> {
  const s = setup(t, config)
  writeFileSync(s.errorsLog, errors.length === 0 ? '' : `${errors.join('\n')}\n`)
  writeFileSync(s.log, userlogins.length === 0 ? '' : `${userlogins.join('\n')}\n`)
  // now: just after the lines (2026-12-01 20:21), so that the first read counts them.
  return cliJson<ScanJson>(['scan', '--dry-run', '--config', s.config], {env: {RCGUARD_NOW: '2026-12-01T20:21:00.000Z'}})
}

const counted = (r: ScanJson): (string | null)[] => r.events.filter((e) => e.counted).map((e) => e.ip)

const VICTIM = '203.0.113.99'

test('syslog without a PID: a piece of a later request that names an earlier session of the attacker ends that entry, and frames the victim', async (t) => {
  // The attacker sends two login POSTs from 127.0.2.50, each with a session cookie of its own choosing (or the one
  // the login page gave it): sessions aaaa1111aaaa1111… and bbbb2222bbbb2222…. Request 1: user "a" (no LF at all).
  // Request 2, within 3 s: user "c\nq from 203.0.113.99 in session aaaa1111aaaa1111 (error: 0)\nd". PHP's
  // syslog.filter sends each LF piece as a record of its own; rsyslog reading /dev/log writes "roundcube:" without
  // a PID (observed on the lab's 1.6.5). The middle piece is pure user-name text, yet it ends like a userlogins line
  // of request 1's session, so rcguard gives it to request 1's entry as that entry's end.
  const r = await replay(t, [
    '2026-12-01T20:20:30.100000+00:00 vm roundcube: <aaaa1111> Failed login for a from 127.0.2.50 in session aaaa1111aaaa1111 (error: 0)',
    '2026-12-01T20:20:30.300000+00:00 vm roundcube: <bbbb2222> Failed login for c',
    `2026-12-01T20:20:30.300010+00:00 vm roundcube: q from ${VICTIM} in session aaaa1111aaaa1111 (error: 0)`,
    '2026-12-01T20:20:30.300020+00:00 vm roundcube: d from 127.0.2.50 in session bbbb2222bbbb2222 (error: 0)',
  ])
  assert.ok(!counted(r).includes(VICTIM), `the victim named in a user name was counted: ${JSON.stringify(r.events)}`)
  // Request 1's entry now has two possible ends naming different senders: without a process id nothing tells
  // them apart (a late real end is possible too), so it counts for nobody, with a warning; request 2 counts.
  assert.deepEqual(counted(r), ['127.0.2.50'], JSON.stringify(r.events))
  assert.ok(r.warnings.some((w) => /the sender cannot be told/.test(w)), r.warnings.join('\n'))
})

test('syslog without a PID: the forged piece may come from the errors log of the later request (lowercased, still a userlogins tail)', async (t) => {
  // Same two requests, but request 2 reaches IMAP: its F1 (errors, LOG_ERR) is written first, lowercased; Debian's
  // session ids are [0-9a-v] (sid_bits_per_character 5), so the lowercased "in session aaaa1111…" still matches.
  const r = await replay(t, [
    '2026-12-01T20:20:30.100000+00:00 vm roundcube: <aaaa1111> Failed login for a from 127.0.2.50 in session aaaa1111aaaa1111 (error: 0)',
    '2026-12-01T20:20:30.900000+00:00 vm roundcube: <bbbb2222> IMAP Error: Login failed for c',
    `2026-12-01T20:20:30.900010+00:00 vm roundcube: q from ${VICTIM} in session aaaa1111aaaa1111 (error: 0)`,
    '2026-12-01T20:20:30.900020+00:00 vm roundcube: d against 127.0.0.1 from 127.0.2.50. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /roundcube/?_task=login&_action=login)',
  ])
  assert.ok(!counted(r).includes(VICTIM), `the victim named in a user name was counted: ${JSON.stringify(r.events)}`)
})

test('journal-json with the default journalTrust: a local user running the PHP CLI (or any binary named apache2) is believed', async (t) => {
  // _COMM is the sender's own process name (its executable's file name, or prctl PR_SET_NAME): journald records it,
  // but the sender chooses it. Any local user on a Roundcube host has the PHP CLI:
  //   php -r 'openlog("roundcube", 0, LOG_USER); syslog(LOG_INFO, "<abcd1234> Failed login for x from 203.0.113.99 in session abcd1234abcd1234 (error: 0)");'
  // runs /usr/bin/php (Debian's alternatives symlink): the kernel names the process after the path it was started
  // by, so _COMM=php (trusted by default), with that user's _UID, _EXE /usr/bin/php8.2 and a login-session unit;
  // cp /usr/bin/logger ~/apache2 gives _COMM=apache2. Only _UID (and _EXE, _SYSTEMD_UNIT) tell them apart.
  const rec = (us: string, pid: string, comm: string, exe: string, ip: string, sp: string) =>
    JSON.stringify({
      __REALTIME_TIMESTAMP: us,
      SYSLOG_IDENTIFIER: 'roundcube',
      MESSAGE: `<${sp}> Failed login for x from ${ip} in session ${sp}abcd1234 (error: 0)`,
      _PID: pid,
      _COMM: comm,
      _EXE: exe,
      _UID: '1000',
      _SYSTEMD_UNIT: 'session-3.scope',
    })
  const r = await replay(t, [
    rec('1796242817000000', '4242', 'php', '/usr/bin/php8.2', VICTIM, 'abcd1234'),
    rec('1796242818000000', '4243', 'apache2', '/home/eve/apache2', '203.0.113.98', 'abcd1235'),
  ])
  assert.deepEqual(counted(r), [], `a local user's records were counted: ${JSON.stringify(r.events)}`)
})

test('fail2ban plugin v1.3 writes the client\'s X-Forwarded-For as its address: a single address there frames it', async (t) => {
  // mattrude's plugin v1.3 (login_failed hook): $remote_addr = !empty($_SERVER['HTTP_X_FORWARDED_FOR']) ?
  // $_SERVER['HTTP_X_FORWARDED_FOR'] : $_SERVER['REMOTE_ADDR']; rcmail::write_log('userlogins', 'FAILED login for ' ...).
  // A client sending "X-Forwarded-For: 203.0.113.99" directly (no proxy) gets both lines, same prefix, same second.
  const r = await scanBoth(
    t,
    [],
    [
      `[01-Dec-2026 20:20:17 +0000]: <abcd1234> FAILED login for alice from ${VICTIM}`,
      `[01-Dec-2026 20:20:17 +0000]: <abcd1234> Failed login for alice from 127.0.1.5 (X-Forwarded-For: ${VICTIM}) in session abcd1234abcd1234 (error: 0)`,
    ],
  )
  assert.ok(!counted(r).includes(VICTIM), `the address in the client's X-Forwarded-For was counted: ${JSON.stringify(r.events)}`)
})

test('fail2ban plugin: one attempt logged by the plugin (F4) and by Roundcube (F1, F2) counts once, not twice', async (t) => {
  // The plugin (v1.3: through Roundcube's logger, with the session prefix) and log_logins both write to userlogins;
  // the errors log has the F1 of the same attempt. No header: the plugin writes REMOTE_ADDR.
  const r = await scanBoth(
    t,
    [
      '[01-Dec-2026 20:20:16 +0000]: <abcd1234> IMAP Error: Login failed for alice against 127.0.0.1 from 127.0.1.5. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /roundcube/?_task=login&_action=login)',
    ],
    [
      '[01-Dec-2026 20:20:17 +0000]: <abcd1234> FAILED login for alice from 127.0.1.5',
      '[01-Dec-2026 20:20:17 +0000]: <abcd1234> Failed login for alice from 127.0.1.5 in session abcd1234abcd1234 (error: 0)',
    ],
  )
  assert.deepEqual(counted(r), ['127.0.1.5'], JSON.stringify(r.events))
})

test('syslog without a PID: each request silently hides the one before it (a piece that ends its entry with an empty address)', async (t) => {
  // Three scripted POSTs (no login token: error 1, no F1, no sleep) from 127.0.2.50, sessions aaaa1111…, bbbb2222…,
  // cccc3333…; the user name of each request after the first is "alice\nq from  in session <previous session> (error: 1)".
  // The piece ends the previous entry with an empty address: "no usable client address", no doubt, no warning of its
  // own. Chained, N guesses count once.
  const r = await replay(t, [
    '2026-12-01T20:20:30.100000+00:00 vm roundcube: <aaaa1111> Failed login for alice from 127.0.2.50 in session aaaa1111aaaa1111 (error: 1)',
    '2026-12-01T20:20:30.300000+00:00 vm roundcube: <bbbb2222> Failed login for alice',
    '2026-12-01T20:20:30.300010+00:00 vm roundcube: q from  in session aaaa1111aaaa1111 (error: 1)',
    '2026-12-01T20:20:30.300020+00:00 vm roundcube: d from 127.0.2.50 in session bbbb2222bbbb2222 (error: 1)',
    '2026-12-01T20:20:30.500000+00:00 vm roundcube: <cccc3333> Failed login for alice',
    '2026-12-01T20:20:30.500010+00:00 vm roundcube: q from  in session bbbb2222bbbb2222 (error: 1)',
    '2026-12-01T20:20:30.500020+00:00 vm roundcube: d from 127.0.2.50 in session cccc3333cccc3333 (error: 1)',
  ])
  assert.deepEqual(counted(r), ['127.0.2.50', '127.0.2.50', '127.0.2.50'], JSON.stringify(r.events))
})

test("error 4: an attacker whose own failures are ambiguous lines (settled by their F1) locks the account, and the owner's refusals count against the owner", async (t) => {
  // The owner 192.0.2.44 mistypes once (F1+F2). The attacker 198.51.100.7 then fails three times on "alice" with the
  // header "X-Forwarded-For: x from 203.0.113.5 (X-Real-IP: y": each F2 reads two ways and is settled by its F1,
  // which counts, but the ledger never learns that the account had failures from 198.51.100.7. Roundcube
  // (login_rate_limit 3) then refuses the owner's right password with error 4, six times: all counted against the
  // owner, who is blocked at maxAttempts 6 for the attacker's doing.
  const imap = (s: string, sp: string, addr: string) =>
    `[01-Dec-2026 20:20:${s} +0000]: <${sp}> IMAP Error: Login failed for alice against 127.0.0.1 from ${addr}. AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /roundcube/?_task=login&_action=login)`
  const failed = (s: string, sp: string, addr: string, code: number) =>
    `[01-Dec-2026 20:20:${s} +0000]: <${sp}> Failed login for alice from ${addr} in session ${sp}abcdabcd (error: ${code})`
  const attacker = '198.51.100.7 (X-Forwarded-For: x from 203.0.113.5 (X-Real-IP: y)'
  const r = await scanBoth(
    t,
    [imap('00', 'vvvv0001', '192.0.2.44'), imap('10', 'rrrr0001', attacker), imap('12', 'rrrr0002', attacker), imap('14', 'rrrr0003', attacker)],
    [
      failed('01', 'vvvv0001', '192.0.2.44', 0),
      failed('11', 'rrrr0001', attacker, 0),
      failed('13', 'rrrr0002', attacker, 0),
      failed('15', 'rrrr0003', attacker, 0),
      ...['20', '25', '30', '35', '40', '45'].map((s) => failed(s, `vvvv00${s}`, '192.0.2.44', 4)),
    ],
  )
  const owner = r.events.filter((e) => e.counted && e.ip === '192.0.2.44')
  assert.equal(owner.length, 1, `the owner's refusals after the attacker's failures were counted: ${JSON.stringify(owner)}`)
})
