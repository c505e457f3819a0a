/**
 * A model of how Roundcube 1.6 (and 1.7 where it differs) writes the log
 * bytes of a login attempt, for tests that want the exact bytes an attacker
 * can make Roundcube write. Modelled on roundcube/roundcubemail at tags 1.6.5
 * and 1.7.3 (the functions named at each step), and on PHP 8's own
 * strip_tags, trim, parse_str, http_build_query, error_log and syslog
 * (syslog.filter=no-ctrl).
 *
 * The pipeline for one POST:
 * - index.php (1.6) / public_html/index.php (1.7): the login branch runs when
 *   rcmail::$task is 'login' (always, for a client without a logged-in
 *   session: rcmail::set_task) and rcmail::$action is 'login', where the
 *   action is asciiwords(get_input_string('_action', INPUT_GPC)): GET, then
 *   POST, then COOKIE, the later one winning (rcube_utils::get_input_value).
 * - the user is trim(get_input_string('_user', INPUT_POST)):
 *   rcube_utils::parse_input_value runs strip_tags (a `<tag>` is removed, a
 *   `<` not followed by white space cuts the rest) unless the value is
 *   PHP-empty ('' or '0'), then rcube_charset::clean (drops invalid UTF-8).
 * - no valid request token → error 1 (ERROR_INVALID_REQUEST), F2 only.
 * - rcmail::login: empty user → false (error 0, no IMAP); user or password
 *   longer than 1024 bytes → error 1 (login_input_checks); login_lc=2 →
 *   mb_strtolower; rcube_utils::idn_to_ascii on the domain when it holds a
 *   byte outside 0x20-0x7E; a locked account (login_rate_limit) → error 4;
 *   else rcube_imap::connect fails and, when user and password are truthy
 *   (and, 1.7, log_logins is off), raises the F1 error, then sleep(1).
 * - rcube::log_bug: `IMAP Error: MESSAGE in FILE on line N (METHOD URI)`
 *   with URI = raw REQUEST_URI plus POST _task/_action missing from $_GET
 *   (http_build_query, joined with `&` when the URI has a `?` past its first
 *   byte, else `?`), then strip_tags.
 * - rcmail::log_login (log_logins=true): `Failed login for USER from ADDR in
 *   session SID16 (error: N)`, USER cut to 256 bytes + `...`, SID16 the first
 *   16 characters of session_id() or `no-session`.
 * - rcube_utils::remote_ip: REMOTE_ADDR, then ` (X-Real-IP: v,X-Forwarded-For: w)`
 *   with X-Real-IP left out when empty or equal to REMOTE_ADDR, and each part
 *   only when its header is non-empty.
 * - rcube::write_log: `<first 8 chars of session_id()> ` before the message
 *   (a session always exists: session_start made one for a new client), then
 *   the driver's envelope.
 */
import {domainToASCII} from 'node:url'

// ---------------------------------------------------------------------------
// PHP functions

const isCSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r'

/**
 * PHP 8's strip_tags($s) without allowed tags (php_strip_tags_ex, ext/standard/string.c):
 * state 0 text, 1 inside a tag, 2 inside `<?…?>`, 3 inside `<!…>`, 4 inside `<!--…-->`.
 * Operates on UTF-16 units, which is the byte algorithm for the ASCII bytes it acts on.
 */
export function phpStripTags(s: string): string {
  let out = ''
  let state = 0
  let depth = 0
  let inQ = ''
  let lc = ''
  let br = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    const prev = i > 0 ? s[i - 1] : undefined
    switch (state) {
      case 0:
        if (c === '\0') break
        if (c === '<') {
          if (inQ !== '') break
          if (isCSpace(s[i + 1])) {
            out += c
            break
          }
          lc = '<'
          state = 1
          break
        }
        if (c === '>') {
          if (depth > 0) {
            depth--
            break
          }
          if (inQ !== '') break
        }
        out += c
        break
      case 1:
        if (c === '<') {
          if (inQ !== '') break
          if (isCSpace(s[i + 1])) break
          depth++
        } else if (c === '>') {
          if (depth > 0) {
            depth--
            break
          }
          if (inQ !== '') break
          lc = '>'
          inQ = ''
          state = 0
        } else if (c === '"' || c === "'") {
          if (i !== 0 && (inQ === '' || c === inQ)) inQ = inQ === '' ? c : ''
        } else if (c === '!') {
          if (prev === '<') {
            state = 3
            lc = c
          }
        } else if (c === '?') {
          if (prev === '<') {
            br = 0
            state = 2
          }
        }
        break
      case 2:
        if (c === '(') {
          if (lc !== '"' && lc !== "'") {
            lc = '('
            br++
          }
        } else if (c === ')') {
          if (lc !== '"' && lc !== "'") {
            lc = ')'
            br--
          }
        } else if (c === '>') {
          if (depth > 0) {
            depth--
            break
          }
          if (inQ !== '') break
          if (br === 0 && lc !== '"' && prev === '?') {
            inQ = ''
            state = 0
          }
        } else if (c === '"' || c === "'") {
          if (prev !== '\\') {
            if (lc === c) lc = ''
            else if (lc !== '\\') lc = c
          }
          if (i !== 0 && (inQ === '' || c === inQ)) inQ = inQ === '' ? c : ''
        } else if ((c === 'l' || c === 'L') && i > 4 && /^<\?xm$/i.test(s.slice(i - 4, i))) {
          state = 1
        }
        break
      case 3:
        if (c === '>') {
          if (depth > 0) {
            depth--
            break
          }
          if (inQ !== '') break
          inQ = ''
          state = 0
        } else if (c === '"' || c === "'") {
          if (i !== 0 && prev !== '\\' && (inQ === '' || c === inQ)) inQ = inQ === '' ? c : ''
        } else if (c === '-') {
          if (i >= 2 && s[i - 1] === '-' && s[i - 2] === '!') state = 4
        } else if ((c === 'e' || c === 'E') && i > 6 && s.slice(i - 6, i).toLowerCase() === 'doctyp') {
          state = 1
        }
        break
      case 4:
        if (c === '>' && inQ === '' && s[i - 1] === '-' && s[i - 2] === '-') {
          inQ = ''
          state = 0
        }
        break
    }
  }
  return out
}

const TRIM = ' \t\n\r\0\x0B'
/** PHP's trim($s) with its default characters. */
export function phpTrim(s: string): string {
  let a = 0
  let b = s.length
  while (a < b && TRIM.includes(s[a] as string)) a++
  while (b > a && TRIM.includes(s[b - 1] as string)) b--
  return s.slice(a, b)
}

/** PHP's empty() of a string. */
const phpEmpty = (s: string | undefined): boolean => s === undefined || s === '' || s === '0'

/** asciiwords($s) of bootstrap.php: drops every character outside [a-z0-9_.-] (case-insensitive). */
export function asciiwords(s: string, cssId = false): string {
  return s.replace(cssId ? /[^a-z0-9_-]+/gi : /[^a-z0-9_.-]+/gi, '')
}

/** PHP's urldecode (php_url_decode): `+` is a space, `%XX` a byte; bytes as Latin-1 units. */
function urldecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
}

/** Latin-1 units (bytes) back to a UTF-8 string, as PHP's byte strings are read by the rest of the model. */
function bytesToText(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8')
}

/**
 * The top-level names PHP's request parsing (php_default_treat_data +
 * php_register_variable_ex) gives the pairs of a query string or an
 * urlencoded body: urldecoded; leading spaces dropped; the name ends at a
 * NUL; ` ` and `.` before the first `[` become `_`; a `[` with a `]` after
 * it makes an array (value not a string), a lone `[` becomes `_`. Later
 * pairs win.
 */
export function phpParseQuery(query: string): Map<string, string | string[]> {
  const vars = new Map<string, string | string[]>()
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    let name = urldecode(eq === -1 ? pair : pair.slice(0, eq))
    const value = bytesToText(urldecode(eq === -1 ? '' : pair.slice(eq + 1)))
    const nul = name.indexOf('\0')
    if (nul !== -1) name = name.slice(0, nul)
    name = name.replace(/^ +/, '')
    if (name === '') continue
    const open = name.indexOf('[')
    let isArray = false
    if (open !== -1) {
      if (name.indexOf(']', open) !== -1) {
        isArray = true
        name = name.slice(0, open)
      } else {
        name = `${name.slice(0, open)}_${name.slice(open + 1)}`
      }
    }
    const head = open === -1 ? name : name.slice(0, Math.min(open, name.length))
    name = head.replace(/[ .]/g, '_') + name.slice(head.length)
    if (name === '') continue
    name = bytesToText(name)
    if (isArray) {
      const prev = vars.get(name)
      vars.set(name, [...(Array.isArray(prev) ? prev : []), value])
    } else vars.set(name, value)
  }
  return vars
}

/** http_build_query($a, '', '&') with PHP_QUERY_RFC1738: urlencode of key and value. */
export function httpBuildQuery(pairs: readonly (readonly [string, string])[]): string {
  const enc = (s: string): string =>
    [...Buffer.from(s, 'utf8')]
      .map((b) => {
        const ch = String.fromCharCode(b)
        if (/[A-Za-z0-9_.-]/.test(ch)) return ch
        if (b === 0x20) return '+'
        return `%${b.toString(16).toUpperCase().padStart(2, '0')}`
      })
      .join('')
  return pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')
}

/**
 * rcube_utils::idn_to_ascii of a (lowercased) login: the domain after the
 * first `@` goes through PHP's idn_to_ascii (ICU UTS #46, nontransitional,
 * options 0, so no STD3 rules) only when it holds a byte outside 0x20-0x7E
 * (an LF, a TAB, any non-ASCII letter). PHP returns false on any ICU error
 * and Roundcube then returns '', so no F1 is written (`$pass && $user`).
 * Modelled ICU errors: an empty label, a label over 63 bytes, a label with a
 * leading or trailing `-` or `--` at positions 3-4, a name over 253 bytes.
 * Without STD3 rules ICU keeps ASCII control bytes as they are; a label with
 * non-ASCII letters becomes `xn--…` (here through the WHATWG host parser,
 * so such a label that also holds characters it refuses counts as an error:
 * an approximation).
 */
export function idnToAscii(input: string): string {
  const at = input.indexOf('@')
  const user = at > 0 ? input.slice(0, at) : ''
  let domain = at > 0 ? input.slice(at + 1) : input
  if (/[^\x20-\x7E]/.test(domain)) {
    const labels: string[] = []
    const parts = domain.split('.')
    for (let i = 0; i < parts.length; i++) {
      let label = parts[i] as string
      if (label === '' && i !== parts.length - 1) return ''
      if (/[^\0-\x7F]/.test(label)) {
        label = domainToASCII(label)
        if (label === '' || label.includes('.')) return ''
      }
      if (Buffer.byteLength(label) > 63 || label.startsWith('-') || label.endsWith('-') || (label.slice(2, 4) === '--' && !label.startsWith('xn'))) return ''
      labels.push(label)
    }
    domain = labels.join('.')
    if (Buffer.byteLength(domain) > 253) return ''
  }
  return at > 0 ? `${user}@${domain}` : domain
}

// ---------------------------------------------------------------------------
// The request and the installation

export interface LoginRequest {
  /** REQUEST_URI exactly as the client sent it (no raw spaces: web servers refuse them). */
  uri: string
  /** The urlencoded POST body. */
  body: string
  /** Cookie names and values (already decoded), e.g. an `_action` cookie. */
  cookies?: Record<string, string>
  /** REMOTE_ADDR as the web server gives it. */
  remoteAddr: string
  /** HTTP_X_REAL_IP and HTTP_X_FORWARDED_FOR as PHP sees them (absent: not sent). */
  xRealIp?: string
  xForwardedFor?: string
  /** session_id(): the client's own cookie value or the one session_start made. */
  sessionId: string
  /** The request carries a valid login token and login-page session (else error 1). */
  validToken: boolean
  /** login_rate_limit has locked the account (error 4, IMAP not contacted). */
  locked: boolean
}

export type Driver = 'file' | 'stdout' | 'php' | 'syslog' | 'rfc3339' | 'journal-json'

export interface Install {
  version: '1.6' | '1.7'
  logLogins: boolean
  driver: Driver
  /** syslog.filter (PHP ≥ 7.3): no-ctrl (the default) splits at LF and writes other control bytes as \xNN. */
  syslogFilter?: 'no-ctrl' | 'raw'
  /** The zone offset the file driver's `O` prints, in minutes. */
  offsetMinutes?: number
  hostname?: string
  syslogId?: string
  imapHost?: string
  /** The IMAP server's refusal after `LOGIN: ` / `AUTHENTICATE PLAIN: `. */
  serverText?: string
  installPath?: string
  /** The syslog daemon's PID tag (`roundcube[4242]:`) as journald forwarding writes it. */
  pidTag?: number
}

/** rcube_imap.php: the line of the raise_error call that logs F1 (1.6.5) / of raise_error itself (1.7.3). */
const F1_LINE = {'1.6': 211, '1.7': 197} as const

export type LogName = 'errors' | 'userlogins'

/** One message Roundcube logs: the text write_log receives, with its session prefix. */
export interface Message {
  log: LogName
  /** Epoch ms at which it is written. */
  time: number
  /** Session prefix + message, as UTF-8 bytes (the 256-byte cut can leave invalid UTF-8). */
  bytes: Buffer
}

/** What the model decided for the attempt, for oracles. */
export interface AttemptOutcome {
  login: boolean
  errorCode: number
  /** The F1 message (errors log), if written. */
  f1: Message | null
  /** The F2 message (userlogins), if written. */
  f2: Message | null
  /** The ADDR text remote_ip() wrote. */
  addr: string
  /** The F2 USER text as written (bytes as latin1 units are not used: a JS string, possibly cut). */
  f2User: Buffer
  f1User: string
  /** The `(METHOD URI)` URI as logged in F1. */
  loggedUri: string
}

/** rcube_utils::remote_ip() (1.5+). */
export function remoteIp(remoteAddr: string, xRealIp: string | undefined, xForwardedFor: string | undefined): string {
  const parts: string[] = []
  if (!phpEmpty(xRealIp) && xRealIp !== remoteAddr) parts.push(`X-Real-IP: ${xRealIp}`)
  if (!phpEmpty(xForwardedFor)) parts.push(`X-Forwarded-For: ${xForwardedFor}`)
  return parts.length > 0 ? `${remoteAddr} (${parts.join(',')})` : remoteAddr
}

function queryOf(uri: string): string {
  const q = uri.indexOf('?')
  if (q === -1) return ''
  const rest = uri.slice(q + 1)
  const hash = rest.indexOf('#')
  return hash === -1 ? rest : rest.slice(0, hash)
}

/** rcube_utils::get_input_value for a string source order GET → POST → COOKIE, then parse_input_value. */
function inputString(name: string, sources: readonly Map<string, string | string[]>[]): string {
  let value: string | string[] | undefined
  for (const s of sources) if (s.has(name)) value = s.get(name)
  if (typeof value !== 'string') return ''
  return parseInputValue(value)
}

/** rcube_utils::parse_input_value without allow_html: strip_tags unless PHP-empty, rcube_charset::clean. */
export function parseInputValue(value: string): string {
  if (phpEmpty(value)) return value
  return phpStripTags(value).replace(/\uFFFD/g, '')
}

/** Whether Roundcube runs its login branch for this request (a client without a logged-in session). */
export function isLoginRequest(req: Pick<LoginRequest, 'uri' | 'body' | 'cookies'>): boolean {
  const get = phpParseQuery(queryOf(req.uri))
  const post = phpParseQuery(req.body)
  const cookie = new Map(Object.entries(req.cookies ?? {}))
  return asciiwords(inputString('_action', [get, post, cookie])) === 'login'
}

/** rcube::log_bug's URI: REQUEST_URI + the POST _task/_action missing from $_GET, through strip_tags. */
export function loggedUri(req: Pick<LoginRequest, 'uri' | 'body'>): string {
  const get = phpParseQuery(queryOf(req.uri))
  const post = phpParseQuery(req.body)
  const add: [string, string][] = []
  for (const name of ['_task', '_action']) {
    const v = post.get(name)
    if (v !== undefined && !get.has(name)) {
      if (typeof v === 'string') add.push([name, v])
      else v.forEach((x, i) => add.push([`${name}[${i}]`, x]))
    }
  }
  let uri = req.uri
  if (add.length > 0) uri += (uri.indexOf('?') > 0 ? '&' : '?') + httpBuildQuery(add)
  return phpStripTags(uri)
}

/** What Roundcube logs for one login POST, and why (index.php login branch, rcmail::login, rcube_imap::connect, log_login). */
export function loginAttempt(install: Install, req: LoginRequest, time: number): AttemptOutcome {
  const post = phpParseQuery(req.body)
  const get = phpParseQuery(queryOf(req.uri))
  const cookie = new Map(Object.entries(req.cookies ?? {}))
  const login = asciiwords(inputString('_action', [get, post, cookie])) === 'login'
  const rawUser = post.get('_user')
  const user = phpTrim(typeof rawUser === 'string' ? parseInputValue(rawUser) : '')
  const rawPass = post.get('_pass')
  const pass = typeof rawPass === 'string' ? rawPass : ''
  const addr = remoteIp(req.remoteAddr, req.xRealIp, req.xForwardedFor)
  const prefix = `<${req.sessionId.slice(0, 8)}> `
  const uri = loggedUri(req)
  let errorCode = 0
  let f1: Message | null = null
  let f1User = ''
  let f2Time = time
  if (!req.validToken) errorCode = 1
  else if (phpEmpty(user)) errorCode = 0
  else if (Buffer.byteLength(user) > 1024 || Buffer.byteLength(pass) > 1024) errorCode = 1
  else {
    f1User = idnToAscii(user.toLowerCase())
    if (req.locked) errorCode = 4
    else {
      errorCode = 0
      const writesF1 = install.version === '1.6' || !install.logLogins
      if (writesF1 && !phpEmpty(pass) && !phpEmpty(f1User)) {
        const host = install.imapHost ?? 'localhost'
        const server = install.serverText ?? 'AUTHENTICATE PLAIN: Authentication failed.'
        const file = `${install.installPath ?? '/usr/share/roundcube'}/program/lib/Roundcube/rcube_imap.php`
        const message = `IMAP Error: Login failed for ${f1User} against ${host} from ${addr}. ${server} in ${file} on line ${F1_LINE[install.version]} (POST ${uri})`
        f1 = {log: 'errors', time, bytes: Buffer.from(prefix + message, 'utf8')}
      }
      f2Time = time + 1000 // sleep(1) after the IMAP refusal
    }
  }
  let f2User = Buffer.from(user, 'utf8')
  if (f2User.length > 256) f2User = Buffer.concat([f2User.subarray(0, 256), Buffer.from('...')])
  const sid16 = req.sessionId === '' ? 'no-session' : req.sessionId.slice(0, 16)
  const f2 = install.logLogins
    ? {
        log: 'userlogins' as const,
        time: f2Time,
        bytes: Buffer.concat([
          Buffer.from(`${prefix}Failed login for `),
          f2User,
          Buffer.from(` from ${addr} in session ${sid16} (error: ${errorCode})`),
        ]),
      }
    : null
  return {login, errorCode, f1: login ? f1 : null, f2: login ? f2 : null, addr, f2User, f1User, loggedUri: uri}
}

// ---------------------------------------------------------------------------
// Envelopes (rcube::write_log and what each driver's sink adds)

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const p2 = (n: number): string => String(n).padStart(2, '0')

/** PHP date('d-M-Y H:i:s O') at the given offset. */
export function phpFileDate(time: number, offsetMinutes = 0): string {
  const d = new Date(time + offsetMinutes * 60_000)
  const sign = offsetMinutes < 0 ? '-' : '+'
  const off = Math.abs(offsetMinutes)
  return `${p2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${sign}${p2(Math.floor(off / 60))}${p2(off % 60)}`
}

/** rsyslog's traditional timestamp `Mmm dd HH:MM:SS` (day space-padded), in UTC. */
export function syslogDate(time: number): string {
  const d = new Date(time)
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`
}

/** RSYSLOG_FileFormat's `2026-11-25T13:44:57.833801+00:00`, in UTC. */
export function rfc3339Date(time: number, micros = 0): string {
  return `${new Date(time).toISOString().slice(0, 19)}.${String((time % 1000) * 1000 + micros).padStart(6, '0')}+00:00`
}

/** PHP's syslog() with syslog.filter=no-ctrl (main/php_syslog.c): one record per LF-separated piece, control bytes as \xNN. */
export function phpSyslogRecords(message: Buffer, filter: 'no-ctrl' | 'raw' = 'no-ctrl'): Buffer[] {
  if (filter === 'raw') return [message]
  const records: Buffer[] = []
  let cur: number[] = []
  for (const b of message) {
    if ((b >= 0x20 && b <= 0x7e) || b >= 0x80) cur.push(b)
    else if (b === 0x0a) {
      records.push(Buffer.from(cur))
      cur = []
    } else cur.push(...Buffer.from(`\\x${b.toString(16).padStart(2, '0')}`))
  }
  records.push(Buffer.from(cur))
  return records
}

/** rsyslog's reception escape ($EscapeControlCharactersOnReceive, on by default): a control byte as #ooo. */
function rsyslogEscape(b: Buffer): Buffer {
  const out: number[] = []
  for (const c of b) {
    if (c < 0x20 || c === 0x7f) out.push(...Buffer.from(`#${c.toString(8).padStart(3, '0')}`))
    else out.push(c)
  }
  return Buffer.from(out)
}

const isValidUtf8 = (b: Buffer): boolean => Buffer.from(b.toString('utf8'), 'utf8').equals(b)

/** One physical record a driver wrote: its bytes, ending with LF. */
export interface Written {
  /** The file it goes to: the log's own file (file driver) or the one shared stream/file. */
  file: string
  bytes: Buffer
  /** Physical lines it spans (LFs in it). */
  lines: number
}

/**
 * The bytes one message becomes under the install's driver. File names:
 * errors.log / userlogins.log (file driver), stdout.log, php_errors.log,
 * syslog, journal.json.
 */
export function envelope(install: Install, msg: Message, seq = 0): Written[] {
  const host = install.hostname ?? 'mail'
  const ident = install.syslogId ?? 'roundcube'
  const tag = install.pidTag === undefined ? `${ident}:` : `${ident}[${install.pidTag}]:`
  const lf = Buffer.from('\n')
  const one = (file: string, bytes: Buffer): Written => ({file, bytes, lines: bytes.filter((b) => b === 0x0a).length})
  switch (install.driver) {
    case 'file':
      return [one(`${msg.log}.log`, Buffer.concat([Buffer.from(`[${phpFileDate(msg.time, install.offsetMinutes ?? 0)}]: `), msg.bytes, lf]))]
    case 'stdout':
      return [one('stdout.log', Buffer.concat([Buffer.from(`${msg.log}: `), msg.bytes, lf]))]
    case 'php': {
      // error_log() into a file: php_log_err_with_severity writes `[d-M-Y H:i:s e] MESSAGE` + PHP_EOL.
      const d = phpFileDate(msg.time).replace(/ \+0000$/, ' UTC')
      return [one('php_errors.log', Buffer.concat([Buffer.from(`[${d}] ${msg.log}: `), msg.bytes, lf]))]
    }
    case 'syslog':
    case 'rfc3339': {
      const stamp = install.driver === 'syslog' ? syslogDate(msg.time) : rfc3339Date(msg.time, seq % 1000)
      return phpSyslogRecords(msg.bytes, install.syslogFilter).map((r) =>
        one('syslog', Buffer.concat([Buffer.from(`${stamp} ${host} ${tag} `), rsyslogEscape(r), lf])),
      )
    }
    case 'journal-json':
      return phpSyslogRecords(msg.bytes, install.syslogFilter).map((r, i) => {
        const us = msg.time * 1000 + ((seq + i) % 1000)
        const rec = {
          __CURSOR: `s=0123456789abcdef;i=${(seq * 10 + i).toString(16)}`,
          __REALTIME_TIMESTAMP: String(us),
          __MONOTONIC_TIMESTAMP: String(us - 1_700_000_000_000_000),
          PRIORITY: msg.log === 'errors' ? '3' : '6',
          SYSLOG_FACILITY: '1',
          SYSLOG_IDENTIFIER: ident,
          _TRANSPORT: 'syslog',
          MESSAGE: isValidUtf8(r) ? r.toString('utf8') : [...r],
          _PID: '4242',
          _UID: '33',
          _GID: '33',
          _COMM: 'php-fpm8.2',
          _EXE: '/usr/sbin/php-fpm8.2',
          _SYSTEMD_UNIT: 'php8.2-fpm.service',
          _HOSTNAME: host,
        }
        return one('journal.json', Buffer.from(`${JSON.stringify(rec)}\n`))
      })
  }
}

// ---------------------------------------------------------------------------
// A set of logs written by many attempts

export interface LineOwner {
  attempt: number
  log: LogName
  /** 1-based physical line numbers in its file. */
  first: number
  last: number
}

/** Collects the messages of many attempts, writes them in time order, and remembers which lines belong to which attempt. */
export class LogSet {
  private readonly messages: {attempt: number; msg: Message; order: number}[] = []

  constructor(readonly install: Install) {}

  add(attempt: number, outcome: AttemptOutcome): void {
    for (const msg of [outcome.f1, outcome.f2]) if (msg !== null) this.messages.push({attempt, msg, order: this.messages.length})
  }

  /** The files' bytes and, per file, which attempt wrote each line. */
  render(): {files: Map<string, Buffer>; owners: Map<string, LineOwner[]>} {
    const sorted = [...this.messages].sort((a, b) => a.msg.time - b.msg.time || a.order - b.order)
    const parts = new Map<string, Buffer[]>()
    const owners = new Map<string, LineOwner[]>()
    const lines = new Map<string, number>()
    sorted.forEach(({attempt, msg}, seq) => {
      for (const w of envelope(this.install, msg, seq)) {
        const n = lines.get(w.file) ?? 0
        parts.set(w.file, [...(parts.get(w.file) ?? []), w.bytes])
        owners.set(w.file, [...(owners.get(w.file) ?? []), {attempt, log: msg.log, first: n + 1, last: n + w.lines}])
        lines.set(w.file, n + w.lines)
      }
    })
    const files = new Map<string, Buffer>()
    for (const [f, ps] of parts) files.set(f, Buffer.concat(ps))
    return {files, owners}
  }
}

/** The files a driver writes (the file driver: one per log; the others: one shared stream). */
export function driverFiles(driver: Driver): string[] {
  switch (driver) {
    case 'file':
      return ['errors.log', 'userlogins.log']
    case 'stdout':
      return ['stdout.log']
    case 'php':
      return ['php_errors.log']
    case 'syslog':
    case 'rfc3339':
      return ['syslog']
    case 'journal-json':
      return ['journal.json']
  }
}
