/**
 * A three-node rcguard cluster (issue 15) for tests: server namespaces a, b
 * and c, each with a TCP listener on the guarded port and its own rcguard
 * (configuration, log, database, firewall), and one client namespace joined
 * to each server by a veth pair, holding every address the test names
 * (attackers and bystanders) on each of the three links, so that the same
 * address reaches every node. Only Redis (test/helpers/redis.ts, a unix
 * socket in a temp dir) is shared between the nodes.
 *
 * Every command run through the world is kept in `transcript`, so a test can
 * search everything rcguard printed (for a password, say).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {appendLines, at, BIN, f2, netns, nowEnv, type CliResult} from './env.js'
import {connect, firewallListing, linkPair, listen, listingHolds, sh} from './packets.js'
import {startRedis, type RedisServer} from './redis.js'

export type Ns = Awaited<ReturnType<typeof netns>>
export type Backend = 'nftables' | 'iptables' | 'ipset' | 'none'
export type NodeName = 'a' | 'b' | 'c'
export const NODES: readonly NodeName[] = ['a', 'b', 'c']

/** The port every node guards (and listens on). */
export const GUARDED = 8443

/** Each server's own addresses, one link each. */
export const SERVER: Record<NodeName, {v4: string; v6: string}> = {
  a: {v4: '192.0.2.1', v6: '2001:db8:a::1'},
  b: {v4: '192.0.2.2', v6: '2001:db8:b::1'},
  c: {v4: '192.0.2.3', v6: '2001:db8:c::1'},
}

/** The client side's networks: every client address a test uses must be in one of them. */
const CLIENT_NET_4 = '203.0.113.0/24'
const CLIENT_NET_6 = '2001:db8:66::/64'

export interface ClusterNode {
  name: string
  /** Its network namespace; undefined for an observer in the host's namespace (backend none). */
  ns: Ns | undefined
  backend: Backend
  dir: string
  config: string
  db: string
  log: string
  /** The configuration's `cluster` section as last written. */
  cluster: Record<string, unknown>
  /** Rewrites the configuration with this `cluster` section (and these top-level keys on top). */
  configure: (cluster: Record<string, unknown>, extra?: Record<string, unknown>) => void
}

export interface RunResult extends CliResult {
  ms: number
  timedOut: boolean
}

/** One row of `rcguard list --json` (the fields README's JSON output names). */
export interface ListEntry {
  ip: string
  state: string
  instance: string | null
  attempts: number
  blocks?: number
  blockedAt: string | null
  blockedUntil: string | null
  rule?: string | null
  comment: string | null
}

export interface World {
  redis: RedisServer
  backend: Backend
  client: Ns
  nodes: Record<NodeName, ClusterNode>
  /** Every command run and what it printed, in order. */
  transcript: string[]
  append: (node: NodeName | ClusterNode, lines: string[]) => void
  /** `rcguard ARGS --config <the node's>` in its namespace at at(min); never rejects; killed after timeoutMs (30 s). */
  run: (node: NodeName | ClusterNode, args: string[], min: number, options?: {timeoutMs?: number}) => Promise<RunResult>
  /** `rcguard hacks` that must exit 0; returns the result. */
  hacks: (node: NodeName | ClusterNode, min: number, what?: string) => Promise<RunResult>
  /** `rcguard list --json` (must exit 0), parsed. */
  list: (node: NodeName | ClusterNode, min: number) => Promise<ListEntry[]>
  /** A connection from `from` (a client address) to the node's guarded port: 'open', 'timeout' (dropped) or an error code. */
  reach: (node: NodeName, from: string) => Promise<string>
  /** reach() for every node and every address given: {a: {addr: 'open', ...}, ...}. */
  matrix: (from: string[]) => Promise<Record<NodeName, Record<string, string>>>
  /** The node's kernel listing of rcguard's objects. */
  listing: (node: NodeName) => Promise<string>
  /** Whether the node's firewall holds the address (alone or as /32, /128). */
  holds: (node: NodeName, ip: string) => Promise<boolean>
  /** Which of a, b, c hold the address. */
  holders: (ip: string) => Promise<NodeName[]>
  /** A further node in the host's namespace with backend none, its own log and database, on the same Redis. */
  observer: (name: string, cluster?: Record<string, unknown>) => ClusterNode
}

export interface WorldOptions {
  backend: Backend
  /** Client addresses (IPv4 in 203.0.113.0/24, IPv6 in 2001:db8:66::/64) present on every link. */
  clients: string[]
  /** Started with --requirepass; the URL carries it. */
  password?: string
  /** Extra keys of every node's `cluster` section (a prefix, say). */
  cluster?: Record<string, unknown>
  /** The Redis database the nodes use, as `db=N` in the URL (none: the URL names none). */
  db?: number
  /** Redis also listens on 127.0.0.1 (for observers in the host's namespace). */
  tcp?: boolean
  /** Run `hacks` once on every node before the test's lines (their logs' first, empty read): default true. */
  prime?: boolean
}

const isV6 = (ip: string): boolean => ip.includes(':')

/** The CLI under test: bin/run.js (the built dist/), or another build's entry named by RCGUARD_TEST_BIN. */
const CLI = process.env.RCGUARD_TEST_BIN ?? BIN

function makeNode(t: {after: (fn: () => void) => void}, name: string, ns: Ns | undefined, backend: Backend, cluster: Record<string, unknown>): ClusterNode {
  const dir = mkdtempSync(join(tmpdir(), `rcguard-node-${name}-`))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  const log = join(dir, 'userlogins.log')
  writeFileSync(log, '')
  const db = join(dir, 'db', 'db.json')
  const config = join(dir, 'rcguard.yml')
  const node: ClusterNode = {
    name,
    ns,
    backend,
    dir,
    config,
    db,
    log,
    cluster,
    configure: (c, extra = {}) => {
      node.cluster = c
      const doc = {
        database: db,
        whitelist: ['127.0.0.0/8', '::1'],
        instances: [{name: 'master', logs: [log], ports: [GUARDED]}],
        firewall: {backend},
        windows: [],
        cluster: c,
        ...extra,
      }
      // 0600: it may hold the Redis password.
      writeFileSync(config, `${JSON.stringify(doc, null, 2)}\n`, {mode: 0o600})
    },
  }
  node.configure(cluster)
  return node
}

/**
 * Builds the cluster: a Redis, the four namespaces and their links, a
 * listener on GUARDED in each server (waited for), and every node's
 * configuration with `cluster: {redis: <url>, node: 'a'|'b'|'c', ...}`.
 */
export async function world(t: {after: (fn: () => Promise<void> | void) => void}, options: WorldOptions): Promise<World> {
  const redis = await startRedis(t, {...(options.password === undefined ? {} : {password: options.password}), tcp: options.tcp ?? false})
  const url = options.db === undefined ? redis.url : `${redis.url}${redis.url.includes('?') ? '&' : '?'}db=${options.db}`
  const client = await netns(t)
  const servers = {} as Record<NodeName, Ns>
  for (const n of NODES) servers[n] = await netns(t)
  for (const n of NODES) {
    const stem = `rc${client.name.slice(-6)}${n}`
    const server = servers[n].name
    await linkPair(stem, {ns: server, v4: SERVER[n].v4, v6: SERVER[n].v6}, {ns: client.name, v4: [], v6: []})
    for (const a of options.clients) {
      if (isV6(a)) await sh(client.name, ['ip', '-6', 'addr', 'add', `${a}/128`, 'dev', `${stem}c`, 'nodad'])
      else await sh(client.name, ['ip', 'addr', 'add', `${a}/32`, 'dev', `${stem}c`])
    }
    await sh(client.name, ['ip', 'route', 'add', `${SERVER[n].v4}/32`, 'dev', `${stem}c`])
    await sh(client.name, ['ip', '-6', 'route', 'add', `${SERVER[n].v6}/128`, 'dev', `${stem}c`])
    await sh(server, ['ip', 'route', 'add', CLIENT_NET_4, 'dev', `${stem}s`])
    await sh(server, ['ip', '-6', 'route', 'add', CLIENT_NET_6, 'dev', `${stem}s`])
    listen(t, server, [GUARDED])
  }

  const nodes = {} as Record<NodeName, ClusterNode>
  for (const n of NODES) nodes[n] = makeNode(t, n, servers[n], options.backend, {redis: url, node: n, ...options.cluster})
  const nodeOf = (x: NodeName | ClusterNode): ClusterNode => (typeof x === 'string' ? nodes[x] : x)
  const transcript: string[] = []

  const run = async (x: NodeName | ClusterNode, args: string[], min: number, opts: {timeoutMs?: number} = {}): Promise<RunResult> => {
    const node = nodeOf(x)
    const argv = [CLI, ...args, '--config', node.config]
    const [cmd, cmdArgs] = node.ns === undefined ? ['node', argv] : ['ip', ['netns', 'exec', node.ns.name, 'node', ...argv]]
    const t0 = performance.now()
    const r = await execa(cmd, cmdArgs, {
      reject: false,
      input: '',
      timeout: opts.timeoutMs ?? 30_000,
      env: {NO_COLOR: '1', FORCE_COLOR: '0', COLUMNS: '160', ...nowEnv(min)},
    })
    const out: RunResult = {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1, ms: performance.now() - t0, timedOut: r.timedOut}
    transcript.push(`$ [${node.name} @${min}] rcguard ${args.join(' ')} -> ${out.exitCode}${out.timedOut ? ' (timed out)' : ''}\n${out.stdout}\n${out.stderr}`)
    return out
  }

  const hacks = async (x: NodeName | ClusterNode, min: number, what = ''): Promise<RunResult> => {
    const r = await run(x, ['hacks'], min)
    assert.equal(r.exitCode, 0, `hacks on ${nodeOf(x).name} at minute ${min}${what === '' ? '' : ` (${what})`} exited ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}:\n${r.stderr}${r.stdout}`)
    return r
  }

  const list = async (x: NodeName | ClusterNode, min: number): Promise<ListEntry[]> => {
    const r = await run(x, ['list', '--json'], min)
    assert.equal(r.exitCode, 0, `list --json on ${nodeOf(x).name}: ${r.stderr}${r.stdout}`)
    return JSON.parse(r.stdout) as ListEntry[]
  }

  const reach = (n: NodeName, from: string): Promise<string> => connect(client.name, isV6(from) ? SERVER[n].v6 : SERVER[n].v4, GUARDED, from)

  const matrix = async (from: string[]): Promise<Record<NodeName, Record<string, string>>> => {
    const out = {} as Record<NodeName, Record<string, string>>
    const pairs = NODES.flatMap((n) => from.map((a) => [n, a] as const))
    const results = await Promise.all(pairs.map(([n, a]) => reach(n, a)))
    pairs.forEach(([n, a], i) => {
      out[n] = {...out[n], [a]: results[i] ?? ''}
    })
    return out
  }

  const listing = (n: NodeName): Promise<string> => firewallListing(servers[n], options.backend)
  const holdsIn = (text: string, ip: string): boolean => listingHolds(text, ip) || listingHolds(text, `${ip}/${isV6(ip) ? 128 : 32}`)
  const holds = async (n: NodeName, ip: string): Promise<boolean> => holdsIn(await listing(n), ip)
  const holders = async (ip: string): Promise<NodeName[]> => {
    const held = await Promise.all(NODES.map((n) => holds(n, ip)))
    return NODES.filter((_, i) => held[i])
  }

  const observer = (name: string, cluster: Record<string, unknown> = {}): ClusterNode =>
    makeNode(t, name, undefined, 'none', {redis: url, node: name, ...options.cluster, ...cluster})

  // Every listener answers before the test starts.
  const bystander = options.clients.find((a) => !isV6(a))
  if (bystander !== undefined) {
    for (const n of NODES) {
      let r = ''
      for (let i = 0; i < 50 && (r = await reach(n, bystander)) !== 'open'; i++) await new Promise((res) => setTimeout(res, 100))
      assert.equal(r, 'open', `the listener of ${n} answers ${bystander} before anything is blocked`)
    }
  }

  const w: World = {
    redis,
    backend: options.backend,
    client,
    nodes,
    transcript,
    append: (x, lines) => appendLines(nodeOf(x).log, lines),
    run,
    hacks,
    list,
    reach,
    matrix,
    listing,
    holds,
    holders,
    observer,
  }
  if (options.prime ?? true) {
    // The logs' first (empty) read, the firewall set up, the cluster configuration accepted.
    for (const n of NODES) await hacks(n, -1, 'first run, empty log: the cluster configuration must be accepted')
  }
  return w
}

/** A matrix where every node gives `value` for each of `addresses` (the expected side of a deepEqual). */
export function everywhere(addresses: Record<string, string>): Record<NodeName, Record<string, string>> {
  return {a: {...addresses}, b: {...addresses}, c: {...addresses}}
}

/** The lines of stdout that start with `blocked <ip> `. */
export function blockedLines(r: CliResult, ip: string): string[] {
  return r.stdout.split('\n').filter((l) => l.startsWith(`blocked ${ip} `))
}

/**
 * Two failures of each address in the logs of `nodes` (default a, b, c):
 * the i-th node's at minute min + i, the j-th address's at seconds 10j and
 * 10j + 5 of it, so that no two lines of the cluster share a second.
 */
export function twoEach(w: World, ips: string[], min: number, nodes: readonly NodeName[] = NODES): void {
  nodes.forEach((n, i) => {
    w.append(
      n,
      ips.flatMap((ip, j) => [f2(at(min + i, 10 * j), ip), f2(at(min + i, 10 * j + 5), ip)]),
    )
  })
}

/**
 * The cluster's basic block: two failures of each address in every node's
 * log from minute `min` (twoEach), hacks on a, b, c at min + 3, then on a and
 * b again at min + 3.5; every node's firewall must then hold every address.
 */
export async function blockEverywhere(w: World, ips: string[], min: number): Promise<void> {
  twoEach(w, ips, min)
  for (const n of NODES) await w.hacks(n, min + 3)
  for (const n of ['a', 'b'] as const) await w.hacks(n, min + 3.5)
  for (const ip of ips) assert.deepEqual(await w.holders(ip), [...NODES], `${ip} (2 failures in each node's log) is held by every node's firewall after runs on a, b, c, a, b`)
}
