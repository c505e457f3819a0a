/**
 * The windows over one key's failures in the cluster: every node's failures
 * of the address (or network), as Redis holds them after a push. The same
 * rules as the Decider's, by the same functions (decisions/windows.ts, and
 * decide.ts's findWindow for the first rule): the first rule over any
 * window; the other failures windows and the user windows over the windows
 * that hold a failure this push brought, relaxed by a successful login within
 * their period. Times are on Redis's clock, so the nodes' own clocks change
 * no decision.
 */
import {findWindow} from '../decisions/decide.js'
import {findFailures, findUsers, type Windows} from '../decisions/windows.js'

/** One failure as a sorted set member holds it: `<identity>|<tag, 4 hex digits>`. */
export function memberOf(id: string, tag: number): string {
  return `${id}|${tag.toString(16).padStart(4, '0')}`
}

/** The tag of a member (0, no name known, for a member of another shape: it can only lower a count). */
export function tagOfMember(member: string): number {
  const m = /\|([0-9a-f]{4})$/.exec(member)
  return m === null ? 0 : Number.parseInt(m[1] as string, 16)
}

export interface ClusterWindow {
  /** The time of the failure that completed the window (Redis clock). */
  at: number
  rule: string
  /** The failures within the rule's period up to `at`. */
  failures: number
}

/**
 * The earliest window the key's failures complete, or null. `times` sorted ascending with `tags` aligned;
 * `fresh`: the indices of the failures this push added; `since`: only failures after it count (the end of the
 * key's last block: failures while it was blocked never count towards the next); `success`: the key's newest
 * successful login, or null.
 */
export function clusterWindow(windows: Windows, all: {times: number[]; tags: number[]}, fresh: number[], since: number, success: number | null): ClusterWindow | null {
  let from = 0
  while (from < all.times.length && (all.times[from] as number) <= since) from++
  const times = all.times.slice(from)
  const tags = all.tags.slice(from)
  const at = fresh.map((i) => i - from).filter((i) => i >= 0)
  if (times.length === 0 || at.length === 0) return null
  let best: ClusterWindow | null = null
  const take = (end: number, rule: string, periodMs: number): void => {
    if (end === -1 || (best !== null && end >= best.at)) return
    let failures = 0
    for (const t of times) if (t >= end - periodMs && t <= end) failures++
    best = {at: end, rule, failures}
  }
  const near = (i: number, periodMs: number): boolean => success !== null && Math.abs((times[i] as number) - success) <= periodMs
  for (const w of windows.failures) {
    if (times.length < w.count) continue
    if (w.first) {
      const start = findWindow(times, w.count, w.periodMs)
      if (start !== -1) take(times[start + w.count - 1] as number, w.rule, w.periodMs)
      continue
    }
    for (const i of at) {
      const end = findFailures(times, 0, times.length, i, w.count, w.periodMs)
      if (end !== -1 && !near(i, w.periodMs)) take(end, w.rule, w.periodMs)
    }
  }
  for (const w of windows.users) {
    for (const i of at) {
      const end = findUsers(times, 0, tags, 0, times.length, i, w.count, w.periodMs)
      if (end !== -1 && !near(i, w.periodMs)) take(end, w.rule, w.periodMs)
    }
  }
  return best
}
