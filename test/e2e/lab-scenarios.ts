/**
 * Adversarial login attempts for the lab Roundcube, shared by the fixture capture (capture-lab.ts) and the
 * end-to-end test (lab.test.ts). Every attempt comes from its own source address so that each log line can be
 * told apart by its real sender; the bait addresses written into user names and headers come from
 * 203.0.113.0/24 and 198.51.100.0/24 (never a sender), the clients behind the playing proxy 127.0.0.1 from
 * 192.0.2.0/24.
 *
 * expect:
 *   exact      counted exactly once (errors + userlogins together) against `sender`, never against a victim
 *   ambiguous  the header text could have forged the address: never against a victim, against `sender` at most once
 *   none       never counted against `sender`: a success, or a rate-limit refusal (error 4) that other
 *              addresses' failures caused
 *   aloneF2    (flag) userlogins alone reads two ways with different senders (its header or user name imitates
 *              a second `from ADDR (X-…)`): replayed alone it may count nobody, with a warning; with its F1
 *              twin it counts exactly once
 *   observe    captured for the record only (a proxy set-up that Roundcube itself gets wrong); not asserted
 */
import type {Attempt} from './lab-driver.js'

export type Expect = 'exact' | 'ambiguous' | 'none' | 'observe'
export interface Scenario extends Attempt {
  expect: Expect
  aloneF2?: 'ambiguous'
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number) => String(n).padStart(2, '0')
/** `[01-Dec-2026 20:00:00 +0000]: ` as Roundcube's file driver writes it. */
export function env(d: Date): string {
  return `[${p2(d.getUTCDate())}-${months[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000]: `
}
/** `Dec  1 20:00:00 HOST roundcube: ` as rsyslog's traditional template writes it. */
export function sysEnv(d: Date, host: string): string {
  return `${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${host} roundcube: `
}

const IMAP_TAIL = 'AUTHENTICATE PLAIN: Authentication failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /roundcube/?_task=login&_action=login)'
const f2 = (v: string, sid = 'abcd1234abcd1234', err = 0) => `Failed login for victim from ${v} in session ${sid} (error: ${err})`
const f1 = (v: string) => `IMAP Error: Login failed for victim against 127.0.0.1 from ${v}. ${IMAP_TAIL}`
const f4 = (v: string) => `FAILED login for victim from ${v}`
const f3 = (v: string) => `Successful login for alice (ID: 1) from ${v} in session abcd1234abcd1234`

export interface Options {
  /** Source addresses are `${net}.N` (a 127.x.y prefix), so two runs never share senders. */
  net: string
  /** A tag in every user name, so that a run's lines are recognisable. */
  tag: string
  now: Date
  /** Host header (localhost: file driver; syslog.localhost: syslog). */
  host: string
  hostname?: string
}

/** User-name injection: LF, CR, TAB, forged lines of every grammar, envelopes, dates, case. */
export function injection(o: Options): Scenario[] {
  const past = env(new Date(o.now.getTime() - 60_000))
  const future = '[25-Dec-2099 23:59:59 +0000]: '
  const sys = sysEnv(new Date(o.now.getTime() - 60_000), o.hostname ?? 'lab')
  const h = o.host
  const s = (n: number) => `${o.net}.${n}`
  const t = o.tag
  const many = Array.from({length: 12}, (_, i) => `\n${past}${f2(`203.0.113.${100 + i}`)}`).join('')
  return [
    {id: 'plain', src: s(10), host: h, user: `${t}plain`, expect: 'exact'},
    {id: 'plain-v6', src: '::1', host: h, user: `${t}plainv6`, expect: 'exact', note: 'IPv6 loopback source'},
    {id: 'lf-f2-env', src: s(11), host: h, user: `${t}lf\n${past}<abcd1234> ${f2('203.0.113.1')}`, victims: ['203.0.113.1'], expect: 'exact'},
    {id: 'lf-f2-bare', src: s(12), host: h, user: `${t}lf\n${f2('203.0.113.2')}`, victims: ['203.0.113.2'], expect: 'exact'},
    {id: 'lf-f2-future', src: s(13), host: h, user: `${t}lf\n${future}${f2('203.0.113.3')}`, victims: ['203.0.113.3'], expect: 'exact'},
    {id: 'lf-f1-env', src: s(14), host: h, user: `${t}lf\n${past}${f1('203.0.113.4')}`, victims: ['203.0.113.4'], expect: 'exact'},
    {id: 'lf-f1-bare', src: s(15), host: h, user: `${t}lf\n${f1('203.0.113.5')}`, victims: ['203.0.113.5'], expect: 'exact'},
    {id: 'lf-f4', src: s(16), host: h, user: `${t}lf\n${past}${f4('203.0.113.6')}\n${f4('203.0.113.7')}`, victims: ['203.0.113.6', '203.0.113.7'], expect: 'exact'},
    {id: 'lf-f3', src: s(17), host: h, user: `${t}lf\n${past}${f3(s(17))}\n${past}${f3('203.0.113.8')}`, victims: ['203.0.113.8'], expect: 'exact'},
    {id: 'lf-mixedcase', src: s(18), host: h, user: `${t}LF\n${past}fAILED lOGIN FOR Victim FROM 203.0.113.9 IN SESSION abcd (ERROR: 0)\n${past}imap error: login failed for v against 127.0.0.1 from 203.0.113.10. ${IMAP_TAIL.toLowerCase()}`, victims: ['203.0.113.9', '203.0.113.10'], expect: 'exact'},
    {id: 'lf-syslog-env', src: s(19), host: h, user: `${t}lf\n${sys}${f2('203.0.113.11')}\n${sys}${f1('203.0.113.12')}`, victims: ['203.0.113.11', '203.0.113.12'], expect: 'exact'},
    {id: 'lf-many-12', src: s(20), host: h, user: `${t}lf12${many}`, victims: Array.from({length: 12}, (_, i) => `203.0.113.${100 + i}`), expect: 'exact', note: '12 forged F2 lines; about 1000 bytes, under login_username_maxlen'},
    {id: 'lf-40-bare', src: s(21), host: h, user: `${t}lf40${'\n'.repeat(40)}${past}${f2('203.0.113.13')}`, victims: ['203.0.113.13'], expect: 'exact', note: '40 LFs then one forged line'},
    {id: 'lf-40-pieces', src: s(22), host: h, user: `${t}lf40p${Array.from({length: 40}, (_, i) => `\nfrom 198.51.100.${i + 1}`).join('')}`, victims: Array.from({length: 40}, (_, i) => `198.51.100.${i + 1}`), expect: 'exact', note: '40 LFs each followed by `from VICTIM`'},
    {id: 'cr-f2', src: s(23), host: h, user: `${t}cr\r${past}${f2('203.0.113.14')}`, victims: ['203.0.113.14'], expect: 'exact'},
    {id: 'crlf-f2', src: s(24), host: h, user: `${t}crlf\r\n${past}${f2('203.0.113.15')}\r\n`, victims: ['203.0.113.15'], expect: 'exact'},
    {id: 'tab', src: s(25), host: h, user: `${t}tab\tfrom 203.0.113.16\tin session abcd1234abcd1234 (error: 0)`, victims: ['203.0.113.16'], expect: 'exact'},
    {id: 'inline-f2', src: s(26), host: h, user: `${t}il from 203.0.113.17 in session abcd1234abcd1234 (error: 0)`, victims: ['203.0.113.17'], expect: 'exact', note: 'no LF: the forged tail sits left of the real one'},
    {id: 'inline-f1', src: s(27), host: h, user: `${t}il against 127.0.0.1 from 203.0.113.18. ${IMAP_TAIL}`, victims: ['203.0.113.18'], expect: 'exact'},
    {id: 'head-f2', src: s(28), host: h, user: `${t}hd from 203.0.113.19 in session abcd1234abcd1234 (error: 0)\nx`, victims: ['203.0.113.19'], expect: 'exact', note: 'the FIRST physical line (real envelope and <SP>) ends like a whole F2 line for the victim'},
    {id: 'head-f2-own-session', src: s(34), host: h, user: `${t}hs`, userFromSession: (sid) => `${t}hs from 203.0.113.27 in session ${sid.slice(0, 16)} (error: 0)\nx`, victims: ['203.0.113.27'], expect: 'exact', note: 'the first physical line is a perfect F2 line for the victim: real envelope, real <SP>, and the real session id (the attacker knows its cookie)'},
    {id: 'head-f1', src: s(29), host: h, user: `${t}hd against 127.0.0.1 from 203.0.113.20. ${IMAP_TAIL}\nx`, victims: ['203.0.113.20'], expect: 'exact', note: 'the FIRST physical line ends like a whole F1 line for the victim (lowercased in errors.log)'},
    {id: 'head-both', src: s(30), host: h, user: `${t}hb from 203.0.113.21 in session abcd1234abcd1234 (error: 0)\n${past}${f1('203.0.113.22')}\nx`, victims: ['203.0.113.21', '203.0.113.22'], expect: 'exact'},
    {id: 'head-f2-proxygroup', src: s(31), host: h, user: `${t}hg from 203.0.113.23 (X-Forwarded-For: 203.0.113.23) in session abcd1234abcd1234 (error: 0)\nx`, victims: ['203.0.113.23'], expect: 'exact'},
    {id: 'lt-cut', src: s(32), host: h, user: `${t}lt from 203.0.113.24 in session abcd1234abcd1234 (error: 0) <x\n${f2('203.0.113.25')}`, victims: ['203.0.113.24', '203.0.113.25'], expect: 'exact', note: 'a bare < cuts the rest'},
    {id: 'tag-stripped', src: s(33), host: h, user: `${t}tg\n<abcd1234> ${f2('203.0.113.26')}`, victims: ['203.0.113.26'], expect: 'exact', note: '<abcd1234> is stripped'},
  ]
}

/** User names over 256 and 1024 bytes, and a UTF-8 sequence cut at byte 256. */
export function long(o: Options): Scenario[] {
  const past = env(new Date(o.now.getTime() - 60_000))
  const s = (n: number) => `${o.net}.${n}`
  const h = o.host
  const t = o.tag
  const pad = (prefix: string, len: number) => prefix + 'a'.repeat(Math.max(0, len - prefix.length))
  return [
    {id: 'long-300-tail', src: s(40), host: h, user: `${pad(`${t}L300`, 250)}\n${past}${f2('203.0.113.30')}`, victims: ['203.0.113.30'], expect: 'exact', note: 'userlogins cuts at 256 bytes (+...), errors.log keeps it all'},
    {id: 'long-300-head', src: s(41), host: h, user: `${pad(`${t}L300h from 203.0.113.31 in session abcd1234abcd1234 (error: 0)\n`, 300)}`, victims: ['203.0.113.31'], expect: 'exact'},
    {id: 'long-1000', src: s(42), host: h, user: `${pad(`${t}L1000`, 900)}\n${past}${f2('203.0.113.32')}\n${past}${f1('203.0.113.33')}`.slice(0, 1020), victims: ['203.0.113.32', '203.0.113.33'], expect: 'exact'},
    {id: 'long-1100', src: s(43), host: h, user: `${pad(`${t}L1100`, 1000)}\n${past}${f2('203.0.113.34')}\n`.padEnd(1100, 'z'), victims: ['203.0.113.34'], expect: 'exact', note: 'over login_username_maxlen (1024): error 1, no IMAP, no F1'},
    {id: 'long-1100-early-lf', src: s(44), host: h, user: `${t}L1100e\n${past}${f2('203.0.113.35')}\n`.padEnd(1100, 'y'), victims: ['203.0.113.35'], expect: 'exact', note: 'error 1; the forged line falls inside the first 256 bytes'},
    {id: 'utf8-cut-256', src: s(45), host: h, user: `${pad(`${t}U`, 255)}é${'b'.repeat(10)}`, expect: 'exact', note: 'byte 256 falls inside é: userlogins keeps half a UTF-8 sequence?'},
  ]
}

/** Headers: forged groups from a direct client, and a trusted proxy (127.0.0.1) that appends or sets. */
export function headers(o: Options): Scenario[] {
  const s = (n: number) => `${o.net}.${n}`
  const h = o.host
  const t = o.tag
  const past = env(new Date(o.now.getTime() - 60_000))
  return [
    {id: 'direct-xff', src: s(50), host: h, user: `${t}dx`, headers: [['X-Forwarded-For', '203.0.113.50']], victims: ['203.0.113.50'], expect: 'exact', note: 'a client not behind the proxy: its headers must be ignored'},
    {id: 'direct-xff-group', src: s(51), host: h, user: `${t}dg`, headers: [['X-Forwarded-For', '203.0.113.51) from 203.0.113.52 (X-Forwarded-For: 203.0.113.52']], victims: ['203.0.113.51', '203.0.113.52'], expect: 'ambiguous', note: 'XFF imitates the end of the group and a second `from ADDR (X-Forwarded-For:` group'},
    {id: 'direct-xff-tail', src: s(52), host: h, user: `${t}dt`, headers: [['X-Forwarded-For', '1.2.3.4) in session abcd1234abcd1234 (error: 0) from 203.0.113.53 (X-Forwarded-For: 1.2.3.4']], victims: ['203.0.113.53'], expect: 'ambiguous'},
    {id: 'direct-xri-comma', src: s(53), host: h, user: `${t}dr`, headers: [['X-Real-IP', '203.0.113.54,X-Forwarded-For: 203.0.113.55']], victims: ['203.0.113.54', '203.0.113.55'], expect: 'exact', note: 'X-Real-IP value imitating both headers'},
    {id: 'direct-xff-repeated', src: s(54), host: h, user: `${t}dp`, headers: [['X-Forwarded-For', '203.0.113.56'], ['X-Forwarded-For', '203.0.113.57'], ['X-Real-IP', '203.0.113.58'], ['X-Real-IP', '203.0.113.59']], victims: ['203.0.113.56', '203.0.113.57', '203.0.113.58', '203.0.113.59'], expect: 'exact'},
    {id: 'direct-xff-user-lf', src: s(55), host: h, user: `${t}du\n${past}<abcd1234> ${f2('203.0.113.60')}`, headers: [['X-Forwarded-For', '203.0.113.61']], victims: ['203.0.113.60', '203.0.113.61'], expect: 'exact'},
    {id: 'proxy-append', src: '127.0.0.1', sender: '192.0.2.60', host: h, user: `${t}pa`, headers: [['X-Forwarded-For', '192.0.2.60']], expect: 'exact', note: 'proxy 127.0.0.1 appends the client'},
    {id: 'proxy-append-forged', src: '127.0.0.1', sender: '192.0.2.61', host: h, user: `${t}pf`, headers: [['X-Forwarded-For', '203.0.113.62, 192.0.2.61']], victims: ['203.0.113.62'], expect: 'exact', note: 'client sent XFF 203.0.113.62, proxy appended 192.0.2.61'},
    {id: 'proxy-append-group', src: '127.0.0.1', sender: '192.0.2.62', host: h, user: `${t}pg`, headers: [['X-Forwarded-For', '203.0.113.63) from 203.0.113.64 (X-Forwarded-For: 203.0.113.64, 192.0.2.62']], victims: ['203.0.113.63', '203.0.113.64'], expect: 'exact', aloneF2: 'ambiguous', note: "client's XFF imitates a second group, the proxy appended the real client"},
    {id: 'proxy-append-xri-forged', src: '127.0.0.1', sender: '192.0.2.63', host: h, user: `${t}pr`, headers: [['X-Real-IP', '203.0.113.65,X-Forwarded-For: 203.0.113.66'], ['X-Forwarded-For', '192.0.2.63']], victims: ['203.0.113.65', '203.0.113.66'], expect: 'none', note: "client's X-Real-IP passed through; proxy appended XFF: a plain trustedProxies entry refuses the disagreeing headers (with a warning naming the fix)"},
    {id: 'proxy-xri', src: '127.0.0.1', sender: '192.0.2.64', host: h, user: `${t}px`, headers: [['X-Real-IP', '192.0.2.64']], expect: 'exact', note: 'proxy sets X-Real-IP only'},
    {id: 'proxy-user-lf', src: '127.0.0.1', sender: '192.0.2.65', host: h, user: `${t}pl\n${past}<abcd1234> Failed login for victim from 203.0.113.67 (X-Forwarded-For: 203.0.113.67) in session abcd1234abcd1234 (error: 0)`, headers: [['X-Forwarded-For', '192.0.2.65']], victims: ['203.0.113.67'], expect: 'exact', aloneF2: 'ambiguous'},
    {id: 'proxy-xri-passes-xff', src: '127.0.0.1', sender: '192.0.2.66', host: h, user: `${t}pz`, headers: [['X-Real-IP', '192.0.2.66'], ['X-Forwarded-For', '203.0.113.68']], victims: ['203.0.113.68'], expect: 'observe', note: "a proxy that sets X-Real-IP but passes the client's XFF: Roundcube's own remote_addr() picks the XFF"},
    {id: 'proxy-none', src: '127.0.0.1', sender: '127.0.0.1', host: h, user: `${t}pn`, expect: 'observe', note: 'the proxy itself, no headers: loopback, never blocked'},
  ]
}

/** URIs and bodies: the login is recognised by the POST body, whatever the query says. */
export function uris(o: Options): Scenario[] {
  const s = (n: number) => `${o.net}.${n}`
  const h = o.host
  const t = o.tag
  return [
    {id: 'uri-no-task', src: s(60), host: h, user: `${t}u0`, uri: '/roundcube/', expect: 'exact'},
    {id: 'uri-other-task', src: s(61), host: h, user: `${t}u1`, uri: '/roundcube/?_task=mail&_action=send', expect: 'exact', note: 'body _task=login wins over the query'},
    {id: 'uri-percent', src: s(62), host: h, user: `${t}u2`, uri: '/roundcube/?%5Ftask=login&_act%69on=login', expect: 'exact'},
    {id: 'uri-paren-from', src: s(63), host: h, user: `${t}u3`, uri: '/roundcube/?x=)from%20203.0.113.70.%20(&_task=login', victims: ['203.0.113.70'], expect: 'exact'},
    {id: 'uri-raw-paren', src: s(64), host: h, user: `${t}u4`, uri: '/roundcube/index.php?_task=login&y=)(POST%20/?_task=login&_action=login)', expect: 'exact'},
    {id: 'uri-tags', src: s(65), host: h, user: `${t}u5`, uri: '/roundcube/?_task=login&a=<b>x</b>', expect: 'exact', note: 'strip_tags on the URI (1.6)'},
    {id: 'body-no-action', src: s(66), host: h, user: `${t}u6`, uri: '/roundcube/?_task=login&_action=login', bodyTask: null, bodyAction: null, expect: 'exact', note: 'no _task/_action in the body: taken from the query'},
    {id: 'body-task-mail', src: s(67), host: h, user: `${t}u7`, uri: '/roundcube/?_task=login&_action=login', bodyTask: 'mail', bodyAction: 'login', expect: 'exact', note: 'still a login (observed): without a session user Roundcube forces task=login, only _action=login matters'},
    {id: 'no-token', src: s(68), host: h, user: `${t}u8`, token: false, expect: 'exact', note: 'no CSRF token: error 1'},
  ]
}

/** login_rate_limit=3: three attackers fail on `account`, then its owner logs in right and gets error 4. */
export function rateLimit(o: Options, account: string, password: string): {attackers: Scenario[]; owner: Scenario[]} {
  const s = (n: number) => `${o.net}.${n}`
  const h = o.host
  return {
    // The 4th attacker is refused (error 4) because of the other three's failures: not its own flood, not counted.
    attackers: [70, 71, 72, 73].map((n) => ({id: `rl-attacker-${n}`, src: s(n), host: h, user: account, pass: `wrong-${n}`, expect: n === 73 ? ('none' as const) : ('exact' as const)})),
    owner: [
      {id: 'rl-owner', src: s(74), host: h, user: account, pass: password, expect: 'none', note: 'the right password, refused by the rate limit that others caused: error 4, never counted against the owner'},
    ],
  }
}

/** A successful login (F3): never counted. */
export function success(o: Options, account: string, password: string): Scenario[] {
  return [{id: 'success', src: `${o.net}.75`, host: o.host, user: account, pass: password, expect: 'none'}]
}
