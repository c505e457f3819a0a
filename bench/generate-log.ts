/**
 * Deterministic generator of a Roundcube 1.6 errors log (file driver) under a
 * brute-force attack, for the scan throughput bench.
 *
 *   node --import tsx bench/generate-log.ts OUT [LINES] [SEED]
 *
 * Same lines and seed: same bytes. The mix, by entry (an entry is one log
 * line, except stack traces and some SMTP errors, which span several):
 * - 78%   F1 login POST, `<sess> IMAP Error: Login failed for USER against localhost from ADDR. SERVER-TEXT in … (POST /?_task=login&_action=login)`;
 * - 6%    the same with a ` (X-Forwarded-For: …)` group (a forged header: both addresses from the pool);
 * - 4%    F1 on a logged-in session's request (GET re-authentication, not a login attempt);
 * - 2%    F1 storage errors (`Could not connect to localhost:143: Connection refused`);
 * - 5%    PHP warnings, notices and deprecations;
 * - 3%    SMTP errors (one in five on two lines);
 * - 0.5%  uncaught exceptions with a multi-line stack trace;
 * - 1.5%  other errors (DB, IMAP greeting, managesieve).
 * Addresses: a pool of 50,000 distinct ones, about 80% IPv4 and 20% IPv6;
 * the first 50,000 address-bearing entries use each once (so a log of more
 * than about 55,000 lines names all of them), later ones draw with a skew
 * (a few addresses hammer, most try a few times). Times increase evenly
 * over one day (25-Nov-2026, +0000).
 */
import {closeSync, openSync, renameSync, writeSync} from 'node:fs'
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

export interface GenerateOptions {
  /** Lines to write (default 1,000,000). */
  lines?: number
  /** Distinct client addresses (default 50,000). */
  addresses?: number
  /** Share of IPv6 addresses in the pool (default 0.2). */
  ipv6Share?: number
  seed?: number
}

export interface GenerateResult {
  path: string
  lines: number
  bytes: number
  /** Lines that `grep -c 'Login failed'` counts. */
  loginFailedLines: number
  /** Distinct REMOTE_ADDRs written. */
  addresses: number
}

/** Bump when the output changes, so cached logs are not reused. */
export const GENERATOR_VERSION = 1

/** mulberry32: small, fast, good enough for test data (generate-db.ts uses it too). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const START = Date.UTC(2026, 10, 25, 0, 0, 0)
const DAY_S = 86_400
const RC = '/usr/share/roundcube'
const IMAP_PHP = `${RC}/program/lib/Roundcube/rcube_imap.php`
const LOGIN_REQ = '(POST /?_task=login&_action=login)'
const SESSION_CHARS = 'abcdefghijklmnopqrstuv0123456789'

const USERS = [
  'admin', 'info', 'test', 'support', 'office', 'sales', 'contact', 'webmaster', 'postmaster', 'root',
  'user', 'mail', 'marketing', 'billing', 'hr', 'noreply', 'backup', 'guest', 'alice', 'bob',
]
const DOMAINS = ['example.com', 'example.org', 'mail.example.net', 'example.de', 'xn--exmple-cua.com']
const SERVER_TEXTS = [
  'AUTHENTICATE PLAIN: Authentication failed.',
  'AUTHENTICATE PLAIN: Authentication failed.',
  'AUTHENTICATE PLAIN: Authentication failed.',
  'LOGIN: Authentication failed.',
  'AUTHENTICATE PLAIN: A0002 NO [AUTHENTICATIONFAILED] Authentication failed.',
]
const REAUTH_REQS = [
  '(GET /?_task=mail&_action=refresh&_remote=1)',
  '(GET /?_task=mail&_action=list&_remote=1)',
  '(GET /?_task=mail&_mbox=INBOX)',
  '(POST /?_task=mail&_action=getunread&_remote=1)',
]
const STORAGE_TEXTS = [
  'Could not connect to localhost:143: Connection refused',
  'Could not connect to localhost:143: Connection timed out',
  'Unable to negotiate TLS',
]
const PHP_MESSAGES = [
  `PHP Warning:  Undefined array key "name" in ${RC}/program/actions/mail/index.php on line 1234 (GET /?_task=mail&_mbox=INBOX)`,
  `PHP Warning:  Trying to access array offset on value of type null in ${RC}/program/lib/Roundcube/rcube_message.php on line 1056 (GET /?_task=mail&_uid=4711&_mbox=INBOX&_action=show)`,
  `PHP Notice:  Undefined index: HTTP_X_REQUESTED_WITH in ${RC}/program/include/rcmail_output_html.php on line 1781 (GET /?_task=login)`,
  `PHP Deprecated:  strftime(): Function strftime() is deprecated in ${RC}/program/lib/Roundcube/rcube_utils.php on line 1215 (GET /?_task=mail&_action=list&_remote=1)`,
  `PHP Error: Failed to load plugin file ${RC}/plugins/markasjunk/markasjunk.php in ${RC}/program/lib/Roundcube/rcube_plugin_api.php on line 194 (GET /?_task=mail)`,
]
const SMTP_MESSAGES = [
  `SMTP Error: Authentication failure: 5.7.8 Error: authentication failed: UGFzc3dvcmQ6 (Code: 535) in ${RC}/program/lib/Roundcube/rcube.php on line 1783 (POST /?_task=mail&_unlock=loading1&_framed=1&_action=send)`,
  `SMTP Error: Failed to add recipient 'nobody@example.invalid' in ${RC}/program/lib/Roundcube/rcube.php on line 1783 (POST /?_task=mail&_unlock=loading2&_framed=1&_action=send)`,
  `SMTP Error: Connection failed: Failed to connect socket: Connection refused in ${RC}/program/lib/Roundcube/rcube.php on line 1783 (POST /?_task=mail&_action=send)`,
]
const SMTP_TWO_LINES: [string, string] = [
  'SMTP Error: Authentication failure: 4.7.0 Temporary authentication failure',
  `4.7.0 Please try again later (Code: 454) in ${RC}/program/lib/Roundcube/rcube.php on line 1783 (POST /?_task=mail&_unlock=loading3&_framed=1&_action=send)`,
]
const OTHER_MESSAGES = [
  `DB Error: SQLSTATE[HY000] [2002] Connection refused in ${RC}/program/lib/Roundcube/rcube_db.php on line 200 (GET /?_task=login)`,
  `IMAP Error: Empty startup greeting (localhost:143) in ${IMAP_PHP} on line 211 (GET /?_task=mail&_action=refresh&_remote=1)`,
  `PHP Error: Unable to connect to managesieve on localhost:4190 in ${RC}/plugins/managesieve/lib/Roundcube/rcube_sieve_engine.php on line 240 (GET /?_task=settings&_action=plugin.managesieve)`,
]
const STACK_TRACE = [
  `PHP Fatal error:  Uncaught Error: Call to a member function get_quota() on null in ${RC}/program/actions/mail/index.php:612`,
  'Stack trace:',
  `#0 ${RC}/program/actions/mail/index.php(177): rcmail_action_mail_index::quota_content()`,
  `#1 ${RC}/program/include/rcmail_action.php(140): rcmail_action_mail_index->run()`,
  `#2 ${RC}/program/include/rcmail.php(275): rcmail_action->run()`,
  `#3 ${RC}/index.php(295): rcmail->action_handler()`,
  '#4 {main}',
  `  thrown in ${RC}/program/actions/mail/index.php on line 612`,
]

/** 50,000 distinct public-looking addresses, about 80% IPv4 and 20% IPv6. */
function addressPool(rand: () => number, size: number, ipv6Share: number): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  const byte = () => Math.floor(rand() * 256)
  const hex16 = () => Math.floor(rand() * 65536).toString(16)
  const v6Prefixes = ['2a01:4f8', '2001:41d0', '2604:a880', '2a02:c207', '2001:19f0', '2400:8901']
  while (out.length < size) {
    let ip: string
    if (rand() < ipv6Share) {
      const prefix = v6Prefixes[Math.floor(rand() * v6Prefixes.length)] ?? '2a01:4f8'
      ip = rand() < 0.5 ? `${prefix}:${hex16()}:${hex16()}::${hex16()}` : `${prefix}:${hex16()}:${hex16()}:${hex16()}:${hex16()}:${hex16()}:${hex16()}`
    } else {
      let a = 1 + Math.floor(rand() * 222)
      if (a === 10 || a === 127 || a === 100 || a === 172 || a === 192) a = 45
      ip = `${a}.${byte()}.${byte()}.${1 + Math.floor(rand() * 254)}`
    }
    if (seen.has(ip)) continue
    seen.add(ip)
    out.push(ip)
  }
  return out
}

function envelope(t: number): string {
  const d = new Date(t)
  const p2 = (n: number) => String(n).padStart(2, '0')
  return `[${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()] ?? 'Jan'}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000]: `
}

/** Writes the log to `path` (via a temporary name, then renamed). */
export function generateLog(path: string, options: GenerateOptions = {}): GenerateResult {
  const total = options.lines ?? 1_000_000
  const rand = prng(options.seed ?? 0x5eed)
  const pool = addressPool(rand, options.addresses ?? 50_000, options.ipv6Share ?? 0.2)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const session = () => {
    let s = ''
    for (let i = 0; i < 8; i++) s += SESSION_CHARS[Math.floor(rand() * 32)]
    return s
  }
  const user = () => {
    const r = rand()
    if (r < 0.4) return pick(USERS)
    if (r < 0.8) return `${pick(USERS)}@${pick(DOMAINS)}`
    return `user${Math.floor(rand() * 100_000)}@${pick(DOMAINS)}`
  }
  let nextFresh = 0
  const used = new Set<number>()
  const addr = () => {
    let i: number
    if (nextFresh < pool.length) i = nextFresh++
    else i = Math.floor(pool.length * rand() ** 3)
    used.add(i)
    return pool[i] ?? '192.0.2.1'
  }

  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w')
  let buf = ''
  let bytes = 0
  let written = 0
  let loginFailed = 0
  const flush = () => {
    bytes += writeSync(fd, buf)
    buf = ''
  }
  try {
    while (written < total) {
      const env = envelope(START + Math.floor((written * DAY_S) / total) * 1000)
      const sp = `<${session()}> `
      const r = rand()
      let entry: string[]
      if (r < 0.78) {
        entry = [`IMAP Error: Login failed for ${user()} against localhost from ${addr()}. ${pick(SERVER_TEXTS)} in ${IMAP_PHP} on line 211 ${LOGIN_REQ}`]
      } else if (r < 0.84) {
        const xff = rand() < 0.5 ? `X-Forwarded-For: ${pool[Math.floor(rand() * pool.length)]}` : `X-Real-IP: ${pool[Math.floor(rand() * pool.length)]},X-Forwarded-For: ${pool[Math.floor(rand() * pool.length)]}`
        entry = [`IMAP Error: Login failed for ${user()} against localhost from ${addr()} (${xff}). ${pick(SERVER_TEXTS)} in ${IMAP_PHP} on line 211 ${LOGIN_REQ}`]
      } else if (r < 0.88) {
        entry = [`IMAP Error: Login failed for ${user()} against localhost from ${addr()}. ${pick(SERVER_TEXTS)} in ${IMAP_PHP} on line 211 ${pick(REAUTH_REQS)}`]
      } else if (r < 0.9) {
        entry = [`IMAP Error: Login failed for ${user()} against localhost from ${addr()}. ${pick(STORAGE_TEXTS)} in ${IMAP_PHP} on line 211 ${LOGIN_REQ}`]
      } else if (r < 0.95) {
        entry = [pick(PHP_MESSAGES)]
      } else if (r < 0.98) {
        entry = rand() < 0.2 ? [...SMTP_TWO_LINES] : [pick(SMTP_MESSAGES)]
      } else if (r < 0.985) {
        entry = STACK_TRACE
      } else {
        entry = [pick(OTHER_MESSAGES)]
      }
      for (let k = 0; k < entry.length && written < total; k++) {
        const text = entry[k] ?? ''
        buf += k === 0 ? `${env}${sp}${text}\n` : `${text}\n`
        if (text.includes('Login failed')) loginFailed++
        written++
      }
      if (buf.length >= 1 << 20) flush()
    }
    flush()
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  return {path, lines: written, bytes, loginFailedLines: loginFailed, addresses: used.size}
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [out, lines, seed] = process.argv.slice(2)
  if (out === undefined) {
    process.stderr.write('usage: node --import tsx bench/generate-log.ts OUT [LINES] [SEED]\n')
    process.exit(2)
  }
  const r = generateLog(out, {lines: lines === undefined ? undefined : Number(lines), seed: seed === undefined ? undefined : Number(seed)})
  console.log(`${r.path}: ${r.lines} lines, ${r.bytes} bytes, ${r.loginFailedLines} "Login failed" lines, ${r.addresses} distinct addresses`)
}
