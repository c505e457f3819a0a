/**
 * `cluster:` in rcguard.yml: the Redis that several web nodes share, this
 * node's name, and the prefix of every key rcguard writes there. The URL is
 * parsed here once; what is printed of it never holds its password
 * (`shownUrl`).
 */
import {hostname} from 'node:os'
import * as z from 'zod'

export interface RedisTarget {
  /** TCP (host, port) or a unix socket (path). */
  host?: string
  port?: number
  path?: string
  tls: boolean
  db: number
  username?: string
  password?: string
}

const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const PREFIX = /^[A-Za-z0-9_.:{}-]{1,32}$/

/** The Redis a URL names, or the reason it names none (a reason that never quotes the URL: it may hold a password). */
export function parseRedisUrl(text: string): RedisTarget | string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return 'not a URL (redis://[user:password@]host[:port][/db], rediss://…, or unix:///path/to/redis.sock[?db=N&password=…])'
  }
  const decode = (s: string): string | undefined => {
    if (s === '') return undefined
    try {
      return decodeURIComponent(s)
    } catch {
      return undefined
    }
  }
  const db = (raw: string | null): number | string => {
    if (raw === null || raw === '') return 0
    if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) > 65535) return 'the database number must be an integer from 0'
    return Number(raw)
  }
  if (url.protocol === 'unix:') {
    if (url.host !== '' || url.username !== '' || url.password !== '') return 'a unix URL names the socket by its absolute path: unix:///path/to/redis.sock (a password goes in ?password=…)'
    const path = decode(url.pathname)
    if (path === undefined || !path.startsWith('/') || path.endsWith('/')) return 'a unix URL names the socket by its absolute path: unix:///path/to/redis.sock'
    for (const k of url.searchParams.keys()) if (!['db', 'password', 'user'].includes(k)) return `unknown parameter ${JSON.stringify(k).slice(0, 40)} (db, user, password)`
    const n = db(url.searchParams.get('db'))
    if (typeof n === 'string') return n
    const password = url.searchParams.get('password') ?? undefined
    const username = url.searchParams.get('user') ?? undefined
    return {path, tls: false, db: n, ...(username === undefined || username === '' ? {} : {username}), ...(password === undefined || password === '' ? {} : {password})}
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'the scheme must be redis://, rediss:// (TLS) or unix://'
  if (url.hostname === '') return 'the URL names no host'
  if (url.search !== '' || url.hash !== '') return 'a redis:// URL takes no query or fragment (the database is its path: redis://host:6379/2)'
  const path = url.pathname.replace(/^\//, '')
  const n = db(path === '' ? null : path)
  if (typeof n === 'string') return n
  const port = url.port === '' ? 6379 : Number(url.port)
  const username = decode(url.username)
  const password = decode(url.password)
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    tls: url.protocol === 'rediss:',
    db: n,
    ...(username === undefined ? {} : {username}),
    ...(password === undefined ? {} : {password}),
  }
}

/** The Redis a target names, as messages print it: never its password. */
export function shownTarget(t: RedisTarget): string {
  const user = t.username === undefined ? '' : `${t.username}${t.password === undefined ? '' : ':***'}@`
  const auth = t.username === undefined && t.password !== undefined ? ':***@' : user
  if (t.path !== undefined) return `unix://${t.path}${t.db === 0 ? '' : ` (db ${t.db})`}`
  const host = t.host?.includes(':') ? `[${t.host}]` : t.host
  return `${t.tls ? 'rediss' : 'redis'}://${auth}${host}:${t.port}/${t.db}`
}

/** The host name, as a node name (the part before the first dot when it is longer than a name can be). */
export function defaultNode(): string {
  const h = hostname()
  if (NODE.test(h)) return h
  const short = h.split('.')[0] ?? ''
  return NODE.test(short) ? short : 'node'
}

export const clusterSchema = z
  .object({
    /** redis://[user:password@]host[:port][/db], rediss://… (TLS), unix:///path/to/redis.sock[?db=N&password=…]. */
    redis: z.string().superRefine((text, ctx) => {
      const t = parseRedisUrl(text)
      if (typeof t === 'string') ctx.addIssue({code: 'custom', message: t})
    }),
    /** This node's name in the cluster (its failures' identity, who made a block); default: the host name. */
    node: z
      .string()
      .regex(NODE, 'a node name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit')
      .optional()
      .transform((n) => n ?? defaultNode()),
    /** Every key rcguard writes in Redis starts with it: several clusters (or other programs) can share one Redis. */
    prefix: z.string().regex(PREFIX, 'a prefix is 1 to 32 letters, digits or _ . : { } -').default('rcguard:'),
    /** With rediss://: the PEM file of the certificate authority that signed Redis's certificate (default: the system's). */
    ca: z.string().min(1).optional(),
    /** How long a connection or a command may take before Redis counts as unreachable for this run. */
    timeoutSeconds: z.number().positive().max(60).default(3),
  })
  .strict()

export type ClusterConfig = z.infer<typeof clusterSchema>
