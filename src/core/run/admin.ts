/**
 * The admin's actions: list, block, unblock, whitelist and flush. Each one
 * that changes the store holds the lock, writes, then brings the firewall in
 * line (desired.ts).
 */
import {countHandBlocks} from '../metrics/metrics.js'
import {blockLength, neverBlockOverlap, neverBlockReason, newEntry, pruneEntries} from '../decisions/decide.js'
import {UsageError} from '../errors.js'
import type {ApplyResult} from '../firewall/index.js'
import {canonicalIp, cidrsOverlap, parseCidr, type Cidr, type NetworkList} from '../net/ip.js'
import {entryText, minPrefix} from '../store/values.js'
import type {AccountRecord, Entry, StoreData} from '../store/schema.js'
import {reportedAccounts} from '../decisions/accounts.js'
import {removeFromWhitelist, unblockEntries, type StillInForce} from '../admin/lift.js'
import {parseOrHint} from '../admin/stored.js'
import {removeInvalid, type RepairResult} from '../admin/repair.js'
import {listView, type EntryState, type ListView} from '../admin/list.js'
import type {InvalidRecord} from '../store/diagnose.js'
import {type GuardContext, whitelistOf, keyOf, readData} from './context.js'
import {syncFirewall, firewallFailed, removeEverywhere} from './desired.js'
import {shareAdminChange, snapshot} from './cluster-admin.js'
import {withClusterView} from './cluster-hold.js'

export type {EntryState, ListCounts, ListRow, ListView} from '../admin/list.js'

export interface ListFilter {
  state?: EntryState[]
  instance?: string
  /** Only entries whose address or network overlaps this address or network (whitelist entries too). */
  ip?: string
}

/** `list`: the counts of the entries the filter matches and the first `limit` of them (0: all), blocked first, then by last seen. */
export async function list(ctx: GuardContext, filter: ListFilter = {}, limit = 0): Promise<ListView> {
  let overlapping: Cidr | undefined
  if (filter.ip !== undefined) {
    const net = parseCidr(filter.ip)
    if (net === null) throw new UsageError(`not an IPv4/IPv6 address or CIDR network: ${filter.ip}`)
    overlapping = net
  }
  const data = await readData(ctx)
  // A cluster node lists the cluster as Redis holds it now (read, nothing written), over its own entries.
  const shared = await withClusterView(ctx.config, data, ctx.now())
  const view = listView(data, whitelistOf(ctx.config, data), ctx.now(), {state: filter.state, instance: filter.instance, overlapping, limit})
  return shared.warning === undefined ? view : {...view, warnings: [shared.warning]}
}

/** `list --accounts`: the accounts reported under attack (accountAlert) and still kept, latest failure first. */
export async function listAccounts(ctx: GuardContext, filter: {instance?: string} = {}): Promise<AccountRecord[]> {
  const data = await readData(ctx)
  return reportedAccounts(data.accounts ?? []).filter((a) => filter.instance === undefined || a.instance === filter.instance)
}

export interface ChangeResult {
  /** What each argument did, one line each. */
  done: string[]
  /** Arguments that matched nothing. */
  notFound: string[]
  /** unblock, whitelist --remove: what still blocks (or still never blocks) an argument. */
  stillInForce?: StillInForce[]
  firewallChanged: boolean
  /** What keeps rcguard's rules from working (a rule of another shadowing them). */
  warnings: string[]
}

function parseAddresses(args: string[], allowCidr: boolean): string[] {
  return args.map((a) => {
    if (allowCidr) {
      const c = parseCidr(a)
      if (c === null) throw new UsageError(`not an IPv4/IPv6 address or CIDR network: ${a}`)
      return c.text
    }
    const ip = canonicalIp(a)
    if (ip === null || a.includes('/')) throw new UsageError(`not an IPv4 or IPv6 address: ${a}`)
    return ip
  })
}

async function mutate(
  ctx: GuardContext,
  change: (data: StoreData) => Omit<ChangeResult, 'firewallChanged' | 'warnings'>,
): Promise<ChangeResult> {
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    // A cluster node acts on the cluster as Redis holds it now: a block or whitelist entry this node has not
    // taken in yet is there to be lifted or removed (what list shows, unblock finds).
    await withClusterView(ctx.config, data, ctx.now())
    const before = snapshot(data, ctx.now())
    const result = change(data)
    // A cluster node: the change goes to Redis first (cluster-admin.ts); unreachable, nothing is written.
    await shareAdminChange(ctx.config, before, data, ctx.now())
    // What can no longer lead to a block goes at every write; the ceiling is the next hacks or scan's (store/keep-small.ts).
    pruneEntries(data, ctx.config, ctx.now())
    await ctx.store.write(data)
    try {
      const fw = await syncFirewall(ctx, data)
      return {...result, firewallChanged: fw.changed, warnings: fw.warnings ?? []}
    } catch (err) {
      firewallFailed(err)
    }
  })
}

/** Whether an entry's address or network shares an address with `net`. */
function overlaps(e: Entry, net: Cidr): boolean {
  const c = parseCidr(e.ip)
  return c !== null && cidrsOverlap(c, net)
}

/**
 * `unblock ADDR|CIDR...`: forget the entries (all instances) of each argument's
 * own scope, its IPv6 network included, and lift their rules now; a wider
 * network that still blocks it is named with the command that lifts it (lift.ts).
 */
export async function unblock(ctx: GuardContext, args: string[]): Promise<ChangeResult> {
  const nets = await parseOrHint(ctx, args, (a) => (a.includes('/') ? parseAddresses([a], true) : parseAddresses([a], false))[0] ?? a)
  const instances = new Set(ctx.config.instances.map((i) => i.name))
  return mutate(ctx, (data) => {
    const never = whitelistOf(ctx.config, data)
    return unblockEntries(data, nets, {now: ctx.now(), key: keyOf(ctx.config, never), never, instances})
  })
}

/** One argument of `block`: the entry text it blocks (an address, or a canonical network), and what was typed when that differs. */
interface BlockTarget {
  ip: string
  /** The argument as given, when it was a network written otherwise (host bits, a /32): the line says it was normalized. */
  written?: string
}

/**
 * The arguments of `block`: addresses, and networks in CIDR notation no
 * wider than an entry can be (/8 for IPv4, /16 for IPv6), each normalized to
 * the text its entry holds (values.ts: host bits cleared, a /32 or /128 as
 * the bare address).
 */
function blockTargets(args: string[]): BlockTarget[] {
  return args.map((a) => {
    if (!a.includes('/')) return {ip: parseAddresses([a], false)[0] ?? a}
    const net = parseCidr(a)
    if (net === null) throw new UsageError(`not an IPv4/IPv6 address or CIDR network: ${a}`)
    const min = minPrefix(net.family)
    if (net.prefix < min) throw new UsageError(`${a} is wider than the widest network rcguard blocks (/${min} for IPv${net.family})`)
    const ip = entryText(net)
    return ip === a.trim() ? {ip} : {ip, written: a}
  })
}

/** Why a target of `block` must never be blocked (the rule, and for a network what it overlaps), or null. */
function blockRefusal(ip: string, never: NetworkList): string | null {
  if (!ip.includes('/')) {
    const why = neverBlockReason(ip, never)
    return why === null ? null : `${ip} is never blocked (${why})`
  }
  const what = neverBlockOverlap(ip, never)
  return what === null ? null : `${ip} overlaps what is never blocked (${what})`
}

/**
 * `block ADDR|CIDR...`: a block by hand (fail2ban's banip). It lasts `minutes`
 * (0: until deleted), by default what the next automatic block would; the
 * never-block rules apply as to any block, to every address of a network.
 */
export async function block(
  ctx: GuardContext,
  args: string[],
  options: {minutes?: number; instance?: string; comment?: string},
): Promise<ChangeResult> {
  const targets = blockTargets(args)
  const instances = options.instance === undefined ? ctx.config.instances.map((i) => i.name) : [options.instance]
  if (options.instance !== undefined && !ctx.config.instances.some((i) => i.name === options.instance)) {
    throw new UsageError(`no instance named ${options.instance} in the configuration`)
  }
  return ctx.store.withLock({wait: true}, async () => {
    const data = await readData(ctx)
    const before = snapshot(data, ctx.now())
    const never = whitelistOf(ctx.config, data)
    const key = keyOf(ctx.config, never)
    const refused = targets.map((t) => blockRefusal(t.ip, never)).filter((why) => why !== null)
    if (refused.length > 0) throw new UsageError(`refused: ${refused.join('; ')}`)
    const now = ctx.now()
    const done: string[] = []
    const handBlocks: string[] = []
    for (const {ip, written} of targets) {
      // With ipv6Prefix set, an IPv6 address's (or narrower network's) network: the entry its failures count against.
      const k = key(ip)
      const name = k !== ip ? `${k} (network of ${written ?? ip})` : written !== undefined ? `${k} (normalized from ${written})` : ip
      for (const instance of instances) {
        let entry = data.entries.find((e) => e.ip === k && e.instance === instance)
        if (entry === undefined) {
          entry = newEntry(k, instance, now)
          data.entries.push(entry)
        }
        const minutes = options.minutes ?? blockLength(ctx.config, entry.blocks)
        entry.blockedAt = now
        entry.blockedUntil = minutes === 0 ? null : now + minutes * 60_000
        entry.blocks++
        entry.failures = []
        entry.rule = 'hand'
        delete entry.tried
        if (options.comment !== undefined) entry.comment = options.comment
        handBlocks.push(instance)
        done.push(`${name}: blocked on ${instance} ${minutes === 0 ? 'until deleted' : `for ${minutes} min`}`)
      }
    }
    await shareAdminChange(ctx.config, before, data, now)
    pruneEntries(data, ctx.config, now)
    await countHandBlocks(ctx.config, data, handBlocks)
    await ctx.store.write(data)
    try {
      const fw = await syncFirewall(ctx, data)
      return {done, notFound: [], firewallChanged: fw.changed, warnings: fw.warnings ?? []}
    } catch (err) {
      firewallFailed(err)
    }
  })
}

/** `whitelist ADDR|CIDR...`: never block these; deletes the entries that overlap them (lifting their blocks) now. */
export async function whitelistAdd(ctx: GuardContext, args: string[], comment: string | null): Promise<ChangeResult> {
  const cidrs = parseAddresses(args, true)
  return mutate(ctx, (data) => {
    const done: string[] = []
    for (const cidr of cidrs) {
      const existing = data.whitelist.find((w) => w.cidr === cidr)
      if (existing === undefined) {
        data.whitelist.push({cidr, comment, added: ctx.now()})
      } else if (comment !== null) {
        existing.comment = comment
      }
      const net = parseCidr(cidr)
      const lifted = net === null ? [] : data.entries.filter((e) => overlaps(e, net))
      const gone = new Set(lifted)
      data.entries = data.entries.filter((e) => !gone.has(e))
      const liftedText = lifted.length > 0 ? `; lifted ${lifted.map((e) => e.ip).join(', ')}` : ''
      done.push(`${cidr}: ${existing === undefined ? 'whitelisted' : 'already whitelisted'}${liftedText}`)
    }
    return {done, notFound: []}
  })
}

/** `whitelist --remove ADDR|CIDR...`; whatever still keeps an argument from being blocked is named (lift.ts). */
export async function whitelistRemove(ctx: GuardContext, args: string[]): Promise<ChangeResult> {
  const cidrs = await parseOrHint(ctx, args, (a) => parseAddresses([a], true)[0] ?? a)
  return mutate(ctx, (data) => removeFromWhitelist(data, cidrs, ctx.config))
}

/** `flush --invalid`: remove the database's invalid records, keeping a copy, then bring the firewall in line (repair.ts). */
export async function flushInvalid(ctx: GuardContext, confirm: (records: InvalidRecord[]) => Promise<boolean>): Promise<RepairResult> {
  return removeInvalid(ctx.store, confirm, (data) => syncFirewall(ctx, data).catch(firewallFailed))
}

/** The whitelist: the configuration's networks and the admin's. */
export async function whitelistList(ctx: GuardContext): Promise<{cidr: string; source: 'config' | 'database'; comment: string | null}[]> {
  const data = await ctx.store.read()
  return [
    ...ctx.config.whitelist.map((c) => ({cidr: parseCidr(c)?.text ?? c, source: 'config' as const, comment: null})),
    ...data.whitelist.map((w) => ({cidr: w.cidr, source: 'database' as const, comment: w.comment})),
  ]
}


export interface FlushResult {
  entriesRemoved: number
  whitelistRemoved: number
  firewall: ApplyResult
}

/** `flush`: remove every rule rcguard created and every offender entry (the whitelist too with `all`). */
export async function flush(ctx: GuardContext, options: {all: boolean}): Promise<FlushResult> {
  return ctx.store.withLock({wait: true}, async () => {
    let data: StoreData | null = null
    let readError: unknown = null
    try {
      data = await ctx.store.read()
    } catch (err) {
      readError = err
    }
    const firewall = await removeEverywhere(ctx, data)
    if (data === null) throw readError
    const result = {entriesRemoved: data.entries.length, whitelistRemoved: options.all ? data.whitelist.length : 0, firewall}
    // The next run sets the rules up again (ApplyResult.cause): not drift to be reported as corrected.
    if (data.firewall !== undefined) data.firewall.removed = 'flush'
    data.entries = []
    if (options.all) data.whitelist = []
    await ctx.store.write(data)
    return result
  })
}
