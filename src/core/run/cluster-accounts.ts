/**
 * accountAlert on a cluster node (cluster-sync.ts calls it in each run's
 * exchange): the accounts failed on over every node's failures, reported
 * once per episode, and with `block` their repeat offenders blocked.
 */
import type {ClusterClient} from '../cluster/client.js'
import {pairs, type BlockRecord, type ClusterView} from '../cluster/records.js'
import type {Config} from '../config/config.js'
import type {AccountAlert} from '../decisions/accounts.js'
import {ruleName} from '../decisions/windows.js'
import {widenIpv6, type NetworkList} from '../net/ip.js'
import {MAX_ACCOUNTS} from '../store/bounds.js'
import type {ClusterRecord, StoreData} from '../store/schema.js'
import {entryAddressProblem} from '../store/values.js'
import {blockInfo, type BlockInfo} from './context.js'
import {entryFor, refusal} from './cluster-hold.js'
import {PUSH_KEYS} from '../cluster/scripts.js'

/** What the accounts' part of an exchange reports back (a part of cluster-sync.ts ClusterOutcome). */
export interface AccountsOut {
  accountAlerts: AccountAlert[]
  blocked: BlockInfo[]
  changed: boolean
}

export interface AccountContext {
  redisTime: number
  toRedis: (t: number) => number
  fromRedis: (t: number) => number
  view: ClusterView
  never: NetworkList
  claim: (instance: string, key: string, at: number, rule: string, comment: string | null) => Promise<BlockRecord | null>
  out: AccountsOut
  /** `<instance> <key>` of what this node blocks already. */
  local: Set<string>
}

/**
 * accountAlert over the cluster: each failure on an account goes to the account's sorted set (its identity
 * and the address, or an IPv6 address's /64, as accounts.ts counts them); a window of periodMinutes up to a
 * push's newest failure on the account holding minAddresses distinct addresses reports the account, once
 * per episode however many nodes see it (REPORT); with `block`, the addresses with two failures or more on
 * it in that window are blocked, from the report on.
 */
export async function accountsOverCluster(client: ClusterClient, config: Config, data: StoreData, rec: ClusterRecord, ctx: AccountContext): Promise<void> {
  const aa = config.accountAlert
  const cluster = config.cluster
  if (aa === undefined || cluster === undefined) return
  const keys = client.keys
  const periodMs = aa.periodMinutes * 60_000
  const rule = ruleName('account', aa.minAddresses, aa.periodMinutes)
  const groups = new Map<string, {instance: string; account: string; members: [string, string][]; newest: number}>()
  for (const f of rec.outbox) {
    if (f.account === undefined || f.account === '') continue
    const id = `${f.instance} ${f.account}`
    let g = groups.get(id)
    if (g === undefined) groups.set(id, (g = {instance: f.instance, account: f.account, members: [], newest: -Infinity}))
    const t = ctx.toRedis(f.time)
    g.members.push([String(t), `${f.id}|${widenIpv6(f.key, 64)}`])
    if (t > g.newest) g.newest = t
  }
  const list = [...groups.values()]
  for (let i = 0; i < list.length; i += PUSH_KEYS) {
    const batch = list.slice(i, i + PUSH_KEYS)
    const args: (string | number)[] = [ctx.redisTime, periodMs + 120_000, 'NX']
    for (const g of batch) args.push(g.members.length, ...g.members.flat())
    const got = await client.call((r) => r.rcPush(batch.length, ...batch.map((g) => keys.account(g.instance, g.account)), ...args))
    for (const [j, g] of batch.entries()) {
      const at = g.newest
      const inWindow = pairs(got[j] ?? [])
        .map(([member, score]) => ({who: member.slice(member.lastIndexOf('|') + 1), t: Number(score)}))
        // A member naming no address rcguard writes (planted in Redis) counts for nothing.
        .filter((x) => x.t >= at - periodMs && x.t <= at && entryAddressProblem(x.who) === null)
      const counts = new Map<string, number>()
      for (const x of inWindow) counts.set(x.who, (counts.get(x.who) ?? 0) + 1)
      let reported = false
      if (counts.size >= aa.minAddresses) {
        const first = Math.min(...inWindow.map((x) => x.t))
        const [made] = await client.call((r) => r.rcReport(1, keys.report(g.instance, g.account), ctx.redisTime, at, at, periodMs, cluster.node, g.account, 7 * 86_400_000))
        reported = true
        if (made === 1) {
          const alert: AccountAlert = {instance: g.instance, account: g.account, addresses: counts.size, first: ctx.fromRedis(first), last: ctx.fromRedis(at), at: ctx.fromRedis(at)}
          ctx.out.accountAlerts.push(alert)
          ctx.out.changed = true
          const accounts = (data.accounts ??= [])
          if (accounts.length < MAX_ACCOUNTS) accounts.push({instance: g.instance, account: g.account, first: alert.first, last: alert.last, addresses: alert.addresses, reportedAt: alert.at, recent: []})
        }
      } else if (aa.block) {
        // Not a full window now: still the episode reported before (by any node)? Then its repeat offenders are blocked.
        const text = await client.call((r) => r.get(keys.report(g.instance, g.account)))
        const last = reportLast(text)
        reported = last !== null && at <= last + periodMs
      }
      if (!reported || aa.block !== true) continue
      for (const [who, n] of counts) {
        if (n < 2 || ctx.local.has(`${g.instance} ${who}`) || refusal(who, ctx.never) !== null) continue
        const b = ctx.view.blocks.get(`${g.instance} ${who}`)
        if (b !== undefined && (b.till === -1 || b.till > ctx.view.now)) continue
        const when = Math.max(...inWindow.filter((x) => x.who === who).map((x) => x.t))
        const made = await ctx.claim(g.instance, who, when, rule, null)
        if (made !== null && made.node === cluster.node && made.at === when) {
          ctx.out.changed = true
          const e = entryFor(data, g.instance, who, ctx.fromRedis(when))
          ctx.out.blocked.push({...blockInfo(e), blockedAt: ctx.fromRedis(made.at), blockedUntil: made.till === -1 ? null : ctx.fromRedis(made.till), rule})
        }
      }
    }
  }
}

/** The newest failure of a reported episode (REPORT's record), or null. */
function reportLast(text: string | null): number | null {
  if (text === null) return null
  try {
    const r = JSON.parse(text) as {last?: unknown}
    return typeof r.last === 'number' && Number.isFinite(r.last) ? r.last : null
  } catch {
    return null
  }
}

