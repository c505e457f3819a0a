/**
 * The Decider keeps its working copy of each entry in rows of typed arrays
 * and writes the entries at flush(): the entries it leaves must be exactly
 * what the plain algorithm on the entry objects leaves (the Decider before
 * the rows, kept here as the reference), for any mix of stored entries (more
 * user names than are kept, blocks in force or ended), out-of-order times,
 * repeated and long user names, success lines with resetOnSuccess, several
 * instances and IPv6 networks (a failure inside a blocked wider network counts against it), and runs of apply split by flushes; with the
 * windows beside the first rule, the reference keeps every (time, name) pair
 * of the user windows unthinned, so the decisions show that thinning changes
 * none (the entries are compared without those pairs).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {blockLength, Decider, neverBlockReason, newEntry, SKEW_MS, type Decision, type DecisionSettings, type SourcedEvent} from '../../src/core/decisions/decide.js'
import {blockKey, cidrContains, NetworkList, parseCidr} from '../../src/core/net/ip.js'
import {cutUser, MAX_USERS} from '../../src/core/store/bounds.js'
import {emptyData, type Entry, type StoreData} from '../../src/core/store/schema.js'
import {nameTag, tagsOf, tagsText, windowsOf} from '../../src/core/decisions/windows.js'

const T0 = Date.UTC(2026, 10, 25, 13, 0, 0)
const MIN = 60_000

/** The reference: every field of the entry object changed in place, per event (no ledger: events here have no twins). */
function reference(data: StoreData, events: SourcedEvent[], settings: DecisionSettings, whitelist: NetworkList, now: number): string[] {
  const byKey = new Map<string, Entry>()
  for (const e of data.entries) byKey.set(`${e.instance} ${e.ip}`, e)
  const w = windowsOf(settings)
  const relaxing = w.failures.length > 1 || w.users.length > 0
  const out: string[] = []
  // Per entry, the tags of its failure times' names, aligned with them (0: not known).
  const tags = new Map<Entry, number[]>()
  const tagsOfEntry = (e: Entry): number[] => tags.get(e) ?? tagsOf(e.tried, e.failures.length)
  // The entries the Decider writes back (its rows touched): their `tried` is made anew from the tags at the end.
  const touched = new Set<Entry>()
  for (const event of events) {
    const keyOf = (ip: string): string => blockKey(ip, settings.ipv6Prefix ?? 128, whitelist)
    if (relaxing && event.outcome === 'success' && event.ip !== null && event.doubt === undefined) {
      const entry = byKey.get(`${event.instance} ${keyOf(event.ip)}`)
      if (entry !== undefined && !((entry.lastSuccess ?? -1) >= event.time)) {
        entry.lastSuccess = event.time
        touched.add(entry)
      }
    }
    if (event.outcome === 'success' && settings.resetOnSuccess === true && event.ip !== null && event.doubt === undefined) {
      const entry = byKey.get(`${event.instance} ${keyOf(event.ip)}`)
      const earlier = entry?.failures.filter((t) => t <= event.time).length ?? 0
      const active = entry !== undefined && entry.blockedAt !== null && (entry.blockedUntil === null || entry.blockedUntil > event.time)
      if (entry !== undefined && earlier > 0 && !active) {
        const g = tagsOfEntry(entry)
        const later = entry.failures.flatMap((t, i) => (t > event.time ? [i] : []))
        entry.failures = later.map((i) => entry.failures[i] as number)
        tags.set(entry, later.map((i) => g[i] as number))
        touched.add(entry)
        out.push('reset')
        continue
      }
    }
    if (!event.counted || event.ip === null) {
      out.push('ignored')
      continue
    }
    if (neverBlockReason(event.ip, whitelist) !== null) {
      out.push('never-block')
      continue
    }
    const key = keyOf(event.ip)
    const name = cutUser(event.user)
    // Inside a wider network entry whose block is in force: counted against it.
    const holder = [...byKey.values()].find((e) => {
      const net = e.ip.includes('/') ? parseCidr(e.ip) : null
      if (net === null || e.instance !== event.instance || (net.family === 6 && net.prefix >= (settings.ipv6Prefix ?? 128))) return false
      return cidrContains(net, event.ip as string) && e.blockedAt !== null && (e.blockedUntil === null || e.blockedUntil > event.time)
    })
    if (holder !== undefined) {
      touched.add(holder)
      holder.attempts++
      if (event.time >= holder.lastSeen) {
        holder.lastSeen = event.time
        holder.lastUser = name
      }
      out.push('already-blocked')
      continue
    }
    let entry = byKey.get(`${event.instance} ${key}`)
    if (entry === undefined) {
      entry = newEntry(key, event.instance, event.time, name)
      byKey.set(`${event.instance} ${key}`, entry)
      data.entries.push(entry)
    }
    touched.add(entry)
    entry.attempts++
    entry.firstSeen = Math.min(entry.firstSeen, event.time)
    const users = entry.users
    const seen = users.indexOf(name)
    if (event.time >= entry.lastSeen) {
      entry.lastSeen = event.time
      entry.lastUser = name
    }
    if (users.length <= MAX_USERS) {
      if (seen !== -1) users.splice(seen, 1)
      users.push(name)
      if (users.length > MAX_USERS) users.shift()
    } else {
      if (seen !== -1) users.splice(seen, 1)
      users.push(name)
      users.shift()
    }
    if (entry.blockedAt !== null && (entry.blockedUntil === null || entry.blockedUntil > event.time)) {
      out.push('already-blocked')
      continue
    }
    const old = tagsOfEntry(entry)
    const marked = [...entry.failures.map((t, i) => ({t, g: old[i] as number, mine: false})), {t: event.time, g: nameTag(event.user), mine: true}].sort((a, b) => a.t - b.t)
    const newest = marked[marked.length - 1]?.t as number
    const keptMarks = marked.filter((m) => m.t >= newest - w.longestMs - SKEW_MS)
    entry.failures = keptMarks.map((m) => m.t)
    tags.set(entry, keptMarks.map((m) => m.g))
    // Where the new failure is among them (-1: older than any window keeps).
    const at = keptMarks.findIndex((m) => m.mine)
    const near = (periodMs: number): boolean => entry.lastSuccess !== undefined && Math.abs(event.time - entry.lastSuccess) <= periodMs
    let trigger = Infinity
    let rule = ''
    // The first rule: any window of k failures; the other windows: those holding the new failure. The earliest completion.
    for (const fw of w.failures) {
      if (!fw.first && (near(fw.periodMs) || at === -1)) continue
      for (let i = 0; i + fw.count - 1 < entry.failures.length; i++) {
        if (!fw.first && !(i <= at && at <= i + fw.count - 1)) continue
        const end = entry.failures[i + fw.count - 1] as number
        if (end - (entry.failures[i] as number) <= fw.periodMs && end < trigger) [trigger, rule] = [end, fw.rule]
      }
    }
    // The user windows: those holding the new failure (if kept), over every kept failure's name (unknown ones count as none).
    for (const uw of w.users) {
      if (near(uw.periodMs) || at === -1) continue
      for (const end of entry.failures) {
        if (end < event.time || end > event.time + uw.periodMs) continue
        const names = new Set(keptMarks.filter((m) => m.t <= end && m.t >= end - uw.periodMs && m.g !== 0).map((m) => m.g))
        if (names.size >= uw.count && end < trigger) [trigger, rule] = [end, uw.rule]
      }
    }
    if (rule === '') {
      out.push('counted')
      continue
    }
    const lengthMin = blockLength(settings, entry.blocks)
    entry.blockedAt = trigger
    entry.blockedUntil = lengthMin === 0 ? null : trigger + lengthMin * MIN
    entry.blocks++
    entry.failures = []
    entry.rule = rule
    delete entry.tried
    tags.delete(entry)
    out.push(`blocked ${trigger} ${entry.blockedUntil} ${rule}`)
  }
  for (const e of touched) {
    const g = tagsOfEntry(e)
    if (w.users.length > 0 && e.failures.length > 0) e.tried = tagsText(g, 0, g.length)
    else delete e.tried
  }
  void now
  return out
}

const summary = (d: Decision): string => (d.action === 'blocked' ? `blocked ${d.blockedAt} ${d.blockedUntil} ${d.rule}` : d.action)

test('property: the rows the Decider counts in leave the entries exactly as the plain per-entry algorithm does', () => {
  const ips = ['192.0.2.1', '192.0.2.2', '198.51.100.7', '2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:9::5', '127.0.0.1']
  const names = ['admin', 'Admin', 'admin ', 'root', 'a', '', 'x'.repeat(70), 'y'.repeat(64), 'été', '\u{1F600}'.repeat(40)]
  const stored = fc.record({
    ip: fc.constantFrom(...ips.slice(0, 4), '2001:db8:1:2::/64'),
    instance: fc.constantFrom('a', 'b'),
    users: fc.array(fc.constantFrom(...names), {maxLength: 6}),
    failures: fc.array(fc.integer({min: -20, max: 0}), {maxLength: 12}),
    block: fc.constantFrom('none', 'active', 'forever', 'over'),
    blocks: fc.integer({min: 0, max: 3}),
    attempts: fc.integer({min: 0, max: 50}),
    // The tags of a database written with a user window: one per failure, or of another length (unknown names).
    tags: fc.option(fc.array(fc.oneof(fc.integer({min: 0, max: 3}), fc.integer({min: 0, max: 0xffff})), {maxLength: 12}), {nil: undefined}),
  })
  const event = fc.record({
    ip: fc.constantFrom(...ips),
    instance: fc.constantFrom('a', 'a', 'b'),
    user: fc.constantFrom(...names),
    gap: fc.oneof({weight: 5, arbitrary: fc.integer({min: -90_000, max: 60_000})}, {weight: 1, arbitrary: fc.integer({min: 0, max: 90 * MIN})}),
    outcome: fc.constantFrom('failure', 'failure', 'failure', 'success'),
    counted: fc.constantFrom(true, true, true, false),
  })
  fc.assert(
    fc.property(
      fc.array(stored, {maxLength: 6}),
      fc.array(event, {minLength: 1, maxLength: 150}),
      fc.record({
        maxAttempts: fc.integer({min: 1, max: 5}),
        periodMinutes: fc.constantFrom(1, 10),
        blockMinutes: fc.constantFrom(0, 30),
        resetOnSuccess: fc.boolean(),
        ipv6Prefix: fc.constantFrom(64, 128),
        factor: fc.constantFrom(1, 2),
        // None, a failures window, a user window, both, or user windows longer than every failures window.
        windows: fc.constantFrom(
          [],
          [{maxAttempts: 4, periodMinutes: 30}],
          [{maxUsers: 3, periodMinutes: 10}],
          [{maxAttempts: 8, periodMinutes: 60}, {maxUsers: 2, periodMinutes: 1}],
          [{maxUsers: 2, periodMinutes: 1}, {maxUsers: 3, periodMinutes: 90}],
        ),
      }),
      fc.array(fc.integer({min: 0, max: 150}), {maxLength: 3}),
      (entries, evs, s, flushes) => {
        const settings: DecisionSettings = {...s, escalation: {factor: s.factor, maxMinutes: 240, forgetDays: 30}}
        const whitelist = new NetworkList(['198.51.100.7'])
        const make = (): StoreData => {
          const data = emptyData()
          for (const e of entries) {
            const entry = newEntry(e.ip, e.instance, T0 - 30 * MIN, e.users.at(-1) ?? '')
            entry.users = [...e.users]
            entry.failures = e.failures.map((m) => T0 + m * MIN).sort((a, b) => a - b)
            entry.attempts = e.attempts
            entry.blocks = e.blocks
            if (e.tags !== undefined) entry.tried = tagsText(e.tags, 0, e.tags.length)
            if (e.block === 'active') [entry.blockedAt, entry.blockedUntil] = [T0 - MIN, T0 + 20 * MIN]
            if (e.block === 'forever') [entry.blockedAt, entry.blockedUntil] = [T0 - MIN, null]
            if (e.block === 'over') entry.lastBlockEnd = T0 - 2 * MIN
            data.entries.push(entry)
          }
          return data
        }
        let t = T0
        let n = 0
        const events = (): SourcedEvent[] => {
          t = T0
          return evs.map((e) => {
            t += e.gap
            n++
            return {grammar: 'F4', outcome: e.outcome as 'failure' | 'success', time: t, ip: e.ip, user: e.user, session: null, errorCode: null, counted: e.counted, reason: 'r', instance: e.instance, file: 'f', lineNo: n}
          })
        }
        const want = make()
        const wantActions = reference(want, events(), settings, whitelist, T0)
        const got = make()
        const decider = new Decider(got, settings, whitelist, T0, false)
        const gotActions: string[] = []
        events().forEach((e, i) => {
          gotActions.push(summary(decider.apply(e)))
          if (flushes.includes(i)) decider.flush()
        })
        decider.flush()
        assert.deepEqual(gotActions, wantActions)
        assert.deepEqual(got.entries, want.entries)
      },
    ),
    {seed: 1212, numRuns: 400},
  )
})
