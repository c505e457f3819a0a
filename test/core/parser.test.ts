import {test} from 'node:test'
import assert from 'node:assert/strict'
import {DEFAULT_PARSE_OPTIONS, EntryParser, LineParser, parseLine} from '../../src/core/parser/parse.js'

const RC = 'in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)'
const T = Date.UTC(2026, 10, 25, 13, 0, 0)

function p(line: string) {
  const e = parseLine(line)
  assert.ok(e, `expected an event from: ${line}`)
  return e
}

test('F2 userlogins 1.5+ line: address, user, session, error code, time', () => {
  const e = p('[25-Nov-2026 13:00:01 +0000]: <k3v9x2pq> Failed login for bob@example.com from 198.51.100.2 in session k3v9x2pqa7m1c0de (error: 1)')
  assert.equal(e.grammar, 'F2')
  assert.equal(e.ip, '198.51.100.2')
  assert.equal(e.user, 'bob@example.com')
  assert.equal(e.session, 'k3v9x2pq')
  assert.equal(e.errorCode, 1)
  assert.equal(e.counted, true)
  assert.equal(e.time, T + 1000)
})

test('numeric offsets are honoured', () => {
  const e = p('[25-Nov-2026 14:00:00 +0100]: <k3v9x2pq> Failed login for a from 192.0.2.10 in session k3v9x2pq (error: 0)')
  assert.equal(e.time, T)
  const f = p('[25-Nov-2026 08:00:00 -0500]: Failed login for a from 192.0.2.10 in session abc (error: 0)')
  assert.equal(f.time, T)
})

test('F2 1.0 line without session prefix, full session id', () => {
  const e = p('[25-Nov-2026 13:00:01 +0000]: Failed login for alice@example.com from 192.0.2.10 in session k3v9x2pqa7m1c0de5r8t2w6y4u (error: 0)')
  assert.equal(e.session, null)
  assert.equal(e.ip, '192.0.2.10')
  assert.equal(e.counted, true)
})

test('F2 with a header group, glued (1.4) and after a space (1.5+): the leading address is the client', () => {
  const glued = p('[25-Nov-2026 13:00:01 +0000]: <k3v9x2pq> Failed login for alice@example.com from 198.51.100.2(X-Forwarded-For: 203.0.113.7) in session k3v9x2pqa7m1c0de (error: 0)')
  assert.equal(glued.ip, '198.51.100.2')
  assert.equal(glued.counted, true)
  const spaced = p('[25-Nov-2026 13:00:01 +0000]: <k3v9x2pq> Failed login for bob@example.com from 198.51.100.2 (X-Real-IP: 203.0.113.7,X-Forwarded-For: 203.0.113.7, 198.51.100.2) in session k3v9x2pqa7m1c0de (error: 1)')
  assert.equal(spaced.ip, '198.51.100.2')
  assert.equal(spaced.counted, true)
})

test('empty user, no-session, rate-limit error 4 all count; error -2 and 2 do not', () => {
  const empty = p('[25-Nov-2026 13:00:06 +0000]: <z9x8c7v6> Failed login for  from 192.0.2.10 in session z9x8c7v6b5n4m3l2 (error: 0)')
  assert.equal(empty.user, '')
  assert.equal(empty.ip, '192.0.2.10')
  assert.equal(empty.counted, true)
  assert.equal(p('[25-Nov-2026 13:00:06 +0000]: Failed login for x from 192.0.2.10 in session no-session (error: 0)').counted, true)
  assert.equal(p('[25-Nov-2026 13:00:05 +0000]: <q1w2e3r4> Failed login for a from 192.0.2.10 in session q1w2e3r4t5y6u7i8 (error: 4)').counted, true)
  const storage = p('[25-Nov-2026 13:00:05 +0000]: <q1w2e3r4> Failed login for a from 192.0.2.10 in session q1w2e3r4t5y6u7i8 (error: -2)')
  assert.equal(storage.counted, false)
  assert.match(storage.reason, /storage/)
  assert.equal(p('[25-Nov-2026 13:00:05 +0000]: Failed login for a from 192.0.2.10 in session q (error: 2)').counted, false)
})

test('F1 errors line 1.5+, IPv4 and IPv6, sentence-ending dot not part of the address', () => {
  const v4 = p(`[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for alice@example.com against localhost from 192.0.2.10. AUTHENTICATE PLAIN: Authentication failed. ${RC}`)
  assert.equal(v4.grammar, 'F1')
  assert.equal(v4.ip, '192.0.2.10')
  assert.equal(v4.user, 'alice@example.com')
  assert.equal(v4.counted, true)
  const v6 = p(`[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for alice@example.com against localhost from 2001:db8::25. AUTHENTICATE PLAIN: Authentication failed. ${RC}`)
  assert.equal(v6.ip, '2001:db8::25')
  assert.equal(v6.counted, true)
})

test('F1 with header group (1.4 glued, 1.5 spaced) and the 1.0 shape', () => {
  const g = p(`[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for alice@example.com against imap.example.com from 198.51.100.2(X-Forwarded-For: 203.0.113.7). AUTHENTICATE PLAIN: Authentication failed. ${RC}`)
  assert.equal(g.ip, '198.51.100.2')
  assert.equal(g.counted, true)
  const s = p(`[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for alice@example.com against localhost from 198.51.100.2 (X-Real-IP: 203.0.113.7,X-Forwarded-For: 203.0.113.7, 198.51.100.2). AUTHENTICATE PLAIN: Authentication failed. ${RC}`)
  assert.equal(s.ip, '198.51.100.2')
  assert.equal(s.counted, true)
  const old = p('[25-Nov-2026 13:00:00 +0000]: IMAP Error: Login failed for alice@example.com from 192.0.2.10. AUTHENTICATE PLAIN: Authentication failed. in /var/www/rc/program/lib/Roundcube/rcube_imap.php on line 184 (POST /?_task=login?_task=login&_action=login)')
  assert.equal(old.ip, '192.0.2.10')
  assert.equal(old.counted, true)
})

test('F1 storage errors and session re-authentication do not count', () => {
  const down = p('[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for a@example.com against localhost from 192.0.2.10. Could not connect to localhost:143: Connection refused in /x/rcube_imap.php on line 211 (POST /?_task=login&_action=login)')
  assert.equal(down.counted, false)
  const reauth = p('[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> IMAP Error: Login failed for a@example.com against localhost from 192.0.2.10. AUTHENTICATE PLAIN: Authentication failed. in /x/rcube_imap.php on line 211 (GET /?_task=mail&_action=list&_remote=1)')
  assert.equal(reauth.counted, false)
  assert.match(reauth.reason, /re-authentication/)
})

test('F3 successful login is recognised and never counted', () => {
  const e = p('[25-Nov-2026 13:05:00 +0000]: <m8q2r4st> Successful login for alice@example.com (ID: 17) from 192.0.2.10 in session m8q2r4st9b0c1d2e')
  assert.equal(e.outcome, 'success')
  assert.equal(e.user, 'alice@example.com')
  assert.equal(e.ip, '192.0.2.10')
  assert.equal(e.counted, false)
})

test('IPv4-mapped IPv6 is the IPv4 address; IPv6 is canonical', () => {
  assert.equal(p('[25-Nov-2026 13:00:01 +0000]: Failed login for a from ::ffff:198.51.100.4 in session x (error: 0)').ip, '198.51.100.4')
  assert.equal(p('[25-Nov-2026 13:00:01 +0000]: Failed login for a from 2001:DB8:0:0::0025 in session x (error: 0)').ip, '2001:db8::25')
})

test('not login lines: PHP messages, lowercase forged text, other errors', () => {
  assert.equal(parseLine('[25-Nov-2026 14:46:05 Europe/Berlin] PHP Warning:  Failed login for x from 192.0.2.1 in session a (error: 0)'), null)
  assert.equal(parseLine('[25-nov-2026 13:00:00 +0000]: failed login for victim from 192.0.2.99 in session a (error: 0)'), null)
  assert.equal(parseLine('[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> SMTP Error: Authentication failure: x (Code: 535) in /x.php on line 1 (POST /?_task=mail)'), null)
  assert.equal(parseLine('Stack trace:'), null)
  assert.equal(parseLine(''), null)
})

test('a user name that claims another address cannot frame it: the rightmost address wins', () => {
  const e = p('[25-Nov-2026 13:00:00 +0000]: <f7r8a9m0> Failed login for victim from 192.0.2.200 in session zz (error: 0) from 203.0.113.99 in session f7r8a9m0mmmm (error: 0)')
  assert.equal(e.ip, '203.0.113.99')
  const f1 = p(`[25-Nov-2026 13:00:00 +0000]: <f7r8a9m0> IMAP Error: Login failed for v@example.com from 192.0.2.200. x against localhost from 203.0.113.98. AUTHENTICATE PLAIN: Authentication failed. ${RC}`)
  assert.equal(f1.ip, '203.0.113.98')
})

test('header text that imitates the tail makes the line ambiguous: not counted, nobody framed', () => {
  const e = p('[25-Nov-2026 13:00:00 +0000]: <r3a1r3a1> Failed login for v@example.com from 198.51.100.66 (X-Forwarded-For: 203.0.113.2) in session zzz (error: 0) from 192.0.2.1 (X-Forwarded-For: 1.1.1.1) in session r3a1r3a1xxxx (error: 0)')
  assert.equal(e.counted, false)
  assert.match(e.reason, /ambiguous/)
})

test('empty or invalid REMOTE_ADDR gives no address and does not count', () => {
  const e = p('[25-Nov-2026 13:00:00 +0000]: Failed login for a from  in session x (error: 0)')
  assert.equal(e.ip, null)
  assert.equal(e.counted, false)
  assert.equal(parseLine('[25-Nov-2026 13:00:00 +0000]: Failed login for a from 1.2.3 in session x (error: 0)'), null)
})

test('a long hostile line full of fake tails still yields the real address', () => {
  const junk = ' from 1.2.3.4 (X-Real-IP: '.repeat(2000)
  const line = `[25-Nov-2026 13:00:00 +0000]: Failed login for ${junk} from 192.0.2.5 in session a (error: 0)`
  const e = parseLine(line)
  assert.ok(e)
  assert.equal(e.ip, '192.0.2.5')
  assert.equal(e.counted, true)
})

test('a newline in the user name cannot frame: the entry is read whole and counts against its real address', () => {
  const entries = new EntryParser(new LineParser({format: 'auto', ident: 'roundcube', sessionPrefix: 'auto'}, DEFAULT_PARSE_OPTIONS, {}, T))
  // What Roundcube writes for user "victim from 192.0.2.99 in session k3v9x2pqa7m1c0de (error: 0)\nx" sent from 203.0.113.50.
  const log = [
    '[25-Nov-2026 13:00:00 +0000]: <k3v9x2pq> Failed login for victim from 192.0.2.99 in session k3v9x2pqa7m1c0de (error: 0)',
    'x from 203.0.113.50 in session k3v9x2pqa7m1c0de (error: 0)',
    '[25-Nov-2026 13:00:05 +0000]: <a1a1a1a1> Failed login for bob from 192.0.2.7 in session a1a1a1a1b2b2b2b2 (error: 0)',
    // A second newline can put a whole fake entry in between: without a session prefix it is part of the entry (shown, never counted).
    '[25-Nov-2026 13:00:06 +0000]: <c3c3c3c3> Failed login for v from 192.0.2.98 in session c3c3c3c3d4d4d4d4 (error: 0)',
    '[25-Nov-2026 13:00:06 +0000]: Failed login for w from 192.0.2.97 in session zz (error: 0)',
    'y from 203.0.113.50 in session c3c3c3c3d4d4d4d4 (error: 0)',
  ]
  const seen: [number, string | null, boolean][] = []
  const emit = ({event, lineNo}: {event: {ip: string | null; counted: boolean}; lineNo: number}) => seen.push([lineNo, event.ip, event.counted])
  log.forEach((line, i) => entries.feed(line, i + 1, 'userlogins.log', emit))
  entries.finish(emit)
  assert.deepEqual(seen, [
    [1, '203.0.113.50', true],
    [3, '192.0.2.7', true],
    [4, '203.0.113.50', true],
    [5, '192.0.2.97', false],
  ])
})
