/**
 * Drives REAL login attempts at the lab Roundcube (/work/shared/lab/roundcube-lab.sh) over loopback, with
 * full control of the user name (any bytes, LF included), the headers (repeatable), the request URI and the
 * POST body's _task/_action. Each attempt: GET the login page (fresh cookie jar) for the session cookie and
 * _token, then POST the login. Sources are restricted to 127.0.0.0/8 and ::1.
 */
import {request} from 'node:http'
import {appendFileSync, closeSync, openSync, readSync, statSync} from 'node:fs'

export interface Attempt {
  /** Short name of the attempt, unique within a run. */
  id: string
  /** TCP source address: 127.0.0.0/8 or ::1. */
  src: string
  /** Host header: selects the lab's per-host Roundcube config (localhost = file logs, syslog.localhost = syslog). */
  host?: string
  user: string
  /** Builds the user name from the session cookie the login page set (to forge a line with the real session). */
  userFromSession?: (session: string) => string
  pass?: string
  /** Extra request headers, in order; a name given twice is sent as two header lines. */
  headers?: [string, string][]
  /** Path and query of the POST (default `/roundcube/?_task=login`). */
  uri?: string
  /** _task/_action sent in the POST body; null leaves the field out. Default login/login. */
  bodyTask?: string | null
  bodyAction?: string | null
  /** Send the CSRF _token read from the login page (default true; false: Roundcube error 1). */
  token?: boolean
  /** The address that really sent it, for the manifest and the assertions (default: src). */
  sender?: string
  /** Addresses written into the attempt as bait: they must never be counted. */
  victims?: string[]
  note?: string
}

export interface AttemptResult {
  id: string
  status: number
  /** The session cookie (roundcube_sessid) of the GET; its first 8 characters are the log's `<session>`. */
  session: string
  /** The user name sent. */
  user: string
  startedAt: string
  endedAt: string
}

function httpOnce(
  src: string,
  method: 'GET' | 'POST',
  path: string,
  headers: [string, string][],
  body?: string,
): Promise<{status: number; setCookie: string[]; text: string}> {
  const v6 = src.includes(':')
  if (v6 ? src !== '::1' : !/^127\.\d+\.\d+\.\d+$/.test(src)) throw new Error(`source ${src} is not loopback`)
  return new Promise((resolve, reject) => {
    const req = request({
      host: v6 ? '::1' : '127.0.0.1',
      family: v6 ? 6 : 4,
      port: 80,
      localAddress: src,
      method,
      path,
      setHost: false,
      timeout: 60_000,
    })
    const grouped = new Map<string, string[]>()
    for (const [k, v] of headers) grouped.set(k, [...(grouped.get(k) ?? []), v])
    for (const [k, vs] of grouped) req.setHeader(k, vs.length === 1 ? (vs[0] as string) : vs)
    if (body !== undefined) {
      req.setHeader('Content-Type', 'application/x-www-form-urlencoded')
      req.setHeader('Content-Length', Buffer.byteLength(body))
    }
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} from ${src}: timeout`)))
    req.on('error', reject)
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [], text: Buffer.concat(chunks).toString('utf8')}),
      )
      res.on('error', reject)
    })
    req.end(body)
  })
}

function formBody(fields: [string, string][]): string {
  return fields.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
}

export async function attempt(a: Attempt): Promise<AttemptResult> {
  const startedAt = new Date().toISOString()
  const base: [string, string][] = [['Host', a.host ?? 'localhost'], ...(a.headers ?? [])]
  const page = await httpOnce(a.src, 'GET', '/roundcube/', base)
  const jar = new Map<string, string>()
  for (const c of page.setCookie) {
    const m = /^([^=;]+)=([^;]*)/.exec(c)
    if (m?.[1] !== undefined && m[2] !== undefined && m[2] !== 'deleted') jar.set(m[1], m[2])
  }
  const token = /name="_token" value="([^"]*)"/.exec(page.text)?.[1] ?? ''
  const fields: [string, string][] = []
  if (a.bodyTask !== null) fields.push(['_task', a.bodyTask ?? 'login'])
  if (a.bodyAction !== null) fields.push(['_action', a.bodyAction ?? 'login'])
  const session = jar.get('roundcube_sessid') ?? ''
  const user = a.userFromSession === undefined ? a.user : a.userFromSession(session)
  fields.push(['_timezone', 'UTC'], ['_url', ''], ['_user', user], ['_pass', a.pass ?? 'wrong-password'])
  if (a.token !== false) fields.push(['_token', token])
  const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  const post = await httpOnce(
    a.src,
    'POST',
    a.uri ?? '/roundcube/?_task=login',
    cookie === '' ? base : [...base, ['Cookie', cookie]],
    formBody(fields),
  )
  return {id: a.id, status: post.status, session, user, startedAt, endedAt: new Date().toISOString()}
}

/** Runs the attempts with at most `parallel` in flight; results in the attempts' order. */
export async function driveAll(attempts: Attempt[], parallel = 6): Promise<AttemptResult[]> {
  const out: AttemptResult[] = new Array(attempts.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++
      const a = attempts[i]
      if (a === undefined) return
      out[i] = await attempt(a)
    }
  }
  await Promise.all(Array.from({length: Math.min(parallel, attempts.length)}, worker))
  return out
}

/** Sizes of files now (0 when missing), to take only what is appended later. */
export function sizes(files: string[]): Map<string, number> {
  return new Map(files.map((f) => [f, fileSize(f)]))
}

export function fileSize(f: string): number {
  try {
    return statSync(f).size
  } catch {
    return 0
  }
}

/** The bytes appended to `file` since it had `from` bytes. */
export function appended(file: string, from: number): Buffer {
  const to = fileSize(file)
  if (to <= from) return Buffer.alloc(0)
  const buf = Buffer.alloc(to - from)
  const fd = openSync(file, 'r')
  try {
    let off = 0
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, from + off)
      if (n === 0) break
      off += n
    }
    return buf.subarray(0, off)
  } finally {
    closeSync(fd)
  }
}

/** Waits until none of the files has grown for `quietMs` (rsyslog writes a moment after the request). */
export async function settle(files: string[], quietMs = 1500, limitMs = 15_000): Promise<void> {
  const t0 = Date.now()
  let last = [...sizes(files).values()].join(',')
  let since = Date.now()
  while (Date.now() - t0 < limitMs) {
    await new Promise((r) => setTimeout(r, 200))
    const now = [...sizes(files).values()].join(',')
    if (now !== last) {
      last = now
      since = Date.now()
    } else if (Date.now() - since >= quietMs) return
  }
}

export function appendTo(file: string, data: Buffer): void {
  appendFileSync(file, data)
}
