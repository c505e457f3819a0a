/**
 * Cluster mode (issue 15) under random faults: many trials of a seeded
 * random schedule over three nodes a, b, c sharing one real redis-server (a
 * unix socket, test/helpers/redis.ts). The nodes have backend none and no
 * namespaces: the invariants are on the databases and Redis, not on packets
 * (test/cluster/cluster.test.ts and faults.test.ts check the packets).
 *
 * A schedule, all on RCGUARD_NOW's clock (from T0 to 9 min): failures of
 * 5 to 7 addresses (each within a burst of 1 to 9 minutes) written to random
 * nodes' logs at random seconds; 8 to 10 slots, each running `rcguard hacks`
 * on a random node or on two or three nodes started together (now and then
 * the same node twice, so one of them may find the lock busy: 75); and
 * faults before or during the slots: Redis stopped (SHUTDOWN SAVE) for one to
 * three slots, restarted empty, SIGKILLed while a run is in progress, or hung
 * (SIGSTOP) while a run is in progress. A fault under a run strikes after a
 * random 0-300 ms from its start, or right after Redis ran the k-th command
 * of the run (seen through MONITOR: inside its exchange with Redis). After a
 * SIGKILL, once the run is over, Redis starts again, empty or from a
 * snapshot taken just before the run (a failover that lost the run's
 * writes). After a SIGSTOP the run gives up (timeoutSeconds 1); then SIGCONT,
 * and Redis runs what it had been sent: a push or a claim the run gave up on
 * may land all the same, and the node pushes those failures again later
 * (the case that needs each failure's identity). After the schedule, Redis
 * up, every node runs hacks twice in turn (minutes 10 and 10.5).
 *
 * The model, computed from every line written and what each run reported:
 * each node's runs read its new lines (all of them: a run that exits 0 reads
 * its log, reaching Redis or not) and count them locally (6 of one node's own
 * lines block on that node alone); a run that reaches Redis (no warning)
 * pushes every failure its node has read and not yet pushed, and the
 * address is blocked when Redis then holds 6 of its failures (the last of
 * runs started together sees every push); a block in Redis reaches every node
 * that reaches Redis. Redis losing its data loses the failures pushed before
 * (only blocks are pushed again, from the databases that hold them; failures
 * are not re-pushed once Redis took them). After a SIGSTOP, what landed is
 * read from Redis (the push is one script: all of it or none). Every
 * address's failures fall within 9 minutes, so any 6 are a window of the
 * first rule (6 in 10 min) and there is no boundary case; the whole schedule
 * is shorter than the 12 minutes the cluster keeps failures (see the last
 * test of this file for what happens beyond). At the end, on every node,
 * `rcguard list --json`:
 * (a) every address the model blocked is blocked on every node;
 * (b) no other address is blocked on any node: not those with 5 or fewer
 *     failures in the cluster (a failure counted twice would block them), nor
 *     those whose failures Redis lost; and each of these has in Redis exactly
 *     the failures the model says it holds (ZCARD): none twice, none lost
 *     beyond the model's losses;
 * (c) every hacks run exits 0 (75, printing nothing, only beside a run of the
 *     same node); with Redis up it prints nothing on stderr; with Redis
 *     stopped exactly one line, the cluster's warning; with Redis killed or
 *     hung under it, nothing or that one line (and a hung Redis costs the run
 *     less than 10 s).
 *
 * CLUSTER_TRIALS sets the trials (default 10, about 75 s on two cores),
 * CLUSTER_SEED the first trial's seed (trial i has seed + i; a failure prints
 * the command that replays it alone), CLUSTER_WORKERS how many trials run at
 * once (default 2).
 *
 * Needs redis-server; skips without it and fails under CI=true.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {rmSync} from 'node:fs'
import {join} from 'node:path'
import {appendLines, at, burst, envInt, f2, pool, seededRandom} from '../helpers/env.js'
import {requireRedis, startRedis, type RedisServer} from '../helpers/redis.js'
import {blockedOn, clusterWarning, copyIfThere, errLines, onCommand, runNode, scope, sleep, trialNode, type RunResult, type TrialNode} from '../helpers/cluster-trials.js'

const TRIALS = envInt('CLUSTER_TRIALS', 10)
const SEED = envInt('CLUSTER_SEED', (Date.now() % 2_147_483_647) + 1)
const WORKERS = envInt('CLUSTER_WORKERS', 2)

const NODES = ['a', 'b', 'c'] as const
type NodeName = (typeof NODES)[number]
/** The first rule: 6 failures within 10 minutes (the default; `windows: []`). */
const THRESHOLD = 6
/** Every failure's second is below this: 9 minutes, inside one window of the first rule. */
const SPAN_S = 540

interface Failure {
  id: number
  ip: string
  node: NodeName
  /** Seconds after T0. */
  sec: number
}

type Trigger = {by: 'delay'; ms: number} | {by: 'command'; k: number}

interface Slot {
  /** RCGUARD_NOW of its runs, minutes after T0. */
  min: number
  /** Done to Redis before the runs. */
  before: 'none' | 'stop' | 'start' | 'empty'
  /** Started together (a node may appear twice). */
  runs: NodeName[]
  /**
   * A fault while the one run is in progress: Redis SIGKILLed, then (the run over) started again, empty or
   * from a snapshot taken just before the run; or Redis hung (SIGSTOP) past the run's timeout, then SIGCONT.
   */
  fault?: Fault
}

type Fault = {kind: 'kill'; trigger: Trigger; restart: 'empty' | 'snapshot'} | {kind: 'pause'; trigger: Trigger}

interface Schedule {
  seed: number
  failures: Failure[]
  slots: Slot[]
}

const pick = <T>(rnd: () => number, list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T

/** The schedule of one trial: a pure function of its seed. */
function schedule(seed: number): Schedule {
  const rnd = seededRandom(seed)
  // Distinct seconds for every failure of the trial (no two lines of the cluster at the same second).
  const used = new Set<number>()
  const failures: Failure[] = []
  const addresses = 5 + Math.floor(rnd() * 3)
  for (let i = 0; i < addresses; i++) {
    const ip = i % 3 === 2 ? `2001:db8:66::${(0x10 + i).toString(16)}` : `203.0.113.${10 + i}`
    // Most near the threshold: 5 (one failure counted twice blocks it) and 6 (one lost leaves it free).
    const total = pick(rnd, [3, 4, 5, 5, 5, 6, 6, 6, 7, 8])
    const alone = rnd() < 0.15 ? pick(rnd, NODES) : undefined
    // A burst of 1 to 9 minutes somewhere in the 9.
    const width = pick(rnd, [60, 120, 180, 300, SPAN_S])
    const from = Math.floor(rnd() * (SPAN_S - width + 1))
    for (let k = 0; k < total; k++) {
      let sec = from + Math.floor(rnd() * width)
      while (used.has(sec)) sec = from + ((sec - from + 1) % width)
      used.add(sec)
      failures.push({id: failures.length, ip, node: alone ?? pick(rnd, NODES), sec})
    }
  }
  const count = 8 + Math.floor(rnd() * 3)
  const slots: Slot[] = []
  /** Slots still to run with Redis down after this one; then a slot that starts it. */
  let downLeft = 0
  let startPending = false
  const quiet: Slot[] = []
  const runsOf = (): NodeName[] => {
    if (rnd() < 0.6) return [pick(rnd, NODES)]
    const nodes = [...NODES].sort(() => rnd() - 0.5).slice(0, rnd() < 0.5 ? 2 : 3)
    if (rnd() < 0.25) nodes.push(pick(rnd, nodes))
    return nodes
  }
  const step = (SPAN_S + 30) / count
  for (let k = 0; k < count; k++) {
    // Spread over (0.5, 9.5) min, in order, at least 15 s apart.
    const min = Math.round(30 + k * step + rnd() * (step - 15)) / 60
    if (downLeft > 0) {
      downLeft--
      slots.push({min, before: 'none', runs: runsOf()})
      continue
    }
    if (startPending) {
      startPending = false
      slots.push({min, before: 'start', runs: runsOf()})
      continue
    }
    const r = rnd()
    if (r < 0.15) {
      // Down for this slot and up to two more.
      downLeft = Math.floor(rnd() * 3)
      startPending = true
      slots.push({min, before: 'stop', runs: runsOf()})
    } else if (r < 0.25) {
      slots.push({min, before: 'empty', runs: runsOf()})
    } else if (r < 0.45) {
      slots.push({min, before: 'none', runs: [pick(rnd, NODES)], fault: faultOf(rnd)})
    } else {
      const s: Slot = {min, before: 'none', runs: runsOf()}
      slots.push(s)
      quiet.push(s)
    }
  }
  // Every trial has a fault under a run at least once.
  if (!slots.some((s) => s.fault !== undefined) && quiet.length > 0) {
    const s = pick(rnd, quiet)
    s.runs = [pick(rnd, NODES)]
    s.fault = faultOf(rnd)
  }
  return {seed, failures, slots}
}

function faultOf(rnd: () => number): Fault {
  const trigger: Trigger = rnd() < 0.5 ? {by: 'delay', ms: Math.floor(rnd() * 301)} : {by: 'command', k: 1 + Math.floor(rnd() * 6)}
  if (rnd() < 0.35) return {kind: 'pause', trigger}
  return {kind: 'kill', trigger, restart: rnd() < 0.5 ? 'empty' : 'snapshot'}
}

function describeTrigger(t: Trigger): string {
  return t.by === 'delay' ? `${t.ms} ms after the start` : `after its command ${t.k}`
}

function describe(s: Slot): string {
  const before = s.before === 'none' ? '' : `[redis ${s.before}] `
  const f = s.fault
  const fault = f === undefined ? '' : f.kind === 'kill' ? ` [SIGKILL ${describeTrigger(f.trigger)}, restart ${f.restart}]` : ` [SIGSTOP ${describeTrigger(f.trigger)}, SIGCONT after the run]`
  return `${before}@${s.min.toFixed(2)} hacks on ${s.runs.join('+')}${fault}`
}

/** The model of the cluster (see the header). */
class Model {
  readonly appended: Record<NodeName, Failure[]> = {a: [], b: [], c: []}
  private readonly read: Record<NodeName, number> = {a: 0, b: 0, c: 0}
  private readonly outbox: Record<NodeName, Set<Failure>> = {a: new Set(), b: new Set(), c: new Set()}
  private readonly own: Record<NodeName, Map<string, number>> = {a: new Map(), b: new Map(), c: new Map()}
  /** The failures Redis holds. */
  redis = new Set<Failure>()
  /** Addresses some node's database holds blocked (so pushed again, and adopted by every node at last). */
  readonly blocked = new Set<string>()
  /** Blocks Redis holds that no database does yet (claimed by a run that gave up on Redis before it read them back). */
  claims = new Set<string>()
  /** Why each address was blocked. */
  readonly because = new Map<string, string>()

  save(): {redis: Set<Failure>; claims: Set<string>} {
    return {redis: new Set(this.redis), claims: new Set(this.claims)}
  }

  restore(s: {redis: Set<Failure>; claims: Set<string>}): void {
    this.redis = new Set(s.redis)
    this.claims = new Set(s.claims)
  }

  /** Redis lost everything. */
  lose(): void {
    this.redis = new Set()
    this.claims = new Set()
  }

  /** The failures node n read and has not pushed. */
  pending(n: NodeName): Failure[] {
    return [...this.outbox[n]]
  }

  /**
   * Node n's pushes landed in Redis though the runs gave up on them (they stay waiting on the node, to be
   * pushed again): the first k of its waiting failures in the order it read them. Runs that gave up one
   * after the other while Redis hung each sent the failures waiting then, so what lands is a prefix.
   */
  landed(n: NodeName, k = this.outbox[n].size): void {
    for (const f of [...this.outbox[n]].slice(0, k)) this.redis.add(f)
  }

  /** A run that exited 0 reads its node's new lines and decides them on its own. */
  local(n: NodeName, what: string): void {
    for (const f of this.appended[n].slice(this.read[n])) {
      this.outbox[n].add(f)
      const c = (this.own[n].get(f.ip) ?? 0) + 1
      this.own[n].set(f.ip, c)
      if (c >= THRESHOLD && !this.blocked.has(f.ip)) {
        this.blocked.add(f.ip)
        this.because.set(f.ip, `${THRESHOLD} in ${n}'s own log (${what})`)
      }
    }
    this.read[n] = this.appended[n].length
  }

  /** Runs (started together) that reached Redis: every failure they read is pushed; the last push sees them all. */
  reach(nodes: NodeName[], what: string): void {
    const touched = new Set<string>()
    for (const n of new Set(nodes)) {
      for (const f of this.outbox[n]) {
        this.redis.add(f)
        touched.add(f.ip)
      }
      this.outbox[n].clear()
    }
    // Every block Redis holds is taken by the run that reads it.
    for (const ip of this.claims) {
      if (!this.blocked.has(ip)) {
        this.blocked.add(ip)
        this.because.set(ip, `a block a run that gave up had claimed in Redis, taken by ${what}`)
      }
    }
    this.claims.clear()
    for (const ip of touched) {
      if (!this.blocked.has(ip) && this.inRedis(ip) >= THRESHOLD) {
        this.blocked.add(ip)
        this.because.set(ip, `${this.inRedis(ip)} in Redis (${what})`)
      }
    }
  }

  inRedis(ip: string): number {
    let n = 0
    for (const f of this.redis) if (f.ip === ip) n++
    return n
  }
}

interface Tally {
  trials: number
  runs: number
  busy: number
  warned: number
  faults: {kill: number; pause: number; warned: number; finished: number; late: number; midway: number; landed: number; claimed: number}
  verdicts: {blocked: number; under: number; lost: number}
  seconds: number
}

/** One trial: runs the schedule, checks (c) as it goes, (a) and (b) at the end; throws with the seed and a transcript. */
async function trial(seed: number, tally: Tally): Promise<void> {
  const plan = schedule(seed)
  const sc = scope()
  const transcript: string[] = []
  const t0 = performance.now()
  const fail = (message: string): never => {
    throw new Error(
      `trial seed ${seed} (replay alone: CLUSTER_SEED=${seed} CLUSTER_TRIALS=1 node --import tsx --test test/cluster/trials.test.ts): ${message}\n` +
        `schedule:\n  ${plan.slots.map(describe).join('\n  ')}\nfailures: ${plan.failures.map((f) => `${f.ip}@${f.node}:${f.sec}`).join(' ')}\n` +
        `transcript (last 40):\n${transcript.slice(-40).join('\n')}`,
    )
  }
  try {
    const redis: RedisServer = await startRedis(sc)
    const nodes = {} as Record<NodeName, TrialNode>
    for (const n of NODES) nodes[n] = trialNode(sc, n, {redis: redis.url, node: n, timeoutSeconds: 1})
    const model = new Model()
    let up = true

    const note = (n: string, min: number, r: RunResult, extra = ''): void => {
      tally.runs++
      transcript.push(`$ [${n} @${min.toFixed(2)}${extra}] hacks -> ${r.exitCode}${r.timedOut ? ' (timed out)' : ''} ${Math.round(r.ms)} ms\n${r.stdout}${r.stdout === '' ? '' : '\n'}${r.stderr}`)
    }
    /** (c) for a run: exit 0 (75 only beside the same node), the stderr that Redis's state calls for. */
    const checkRun = (n: NodeName, r: RunResult, group: NodeName[], redisUp: boolean | 'faulted'): 'ok' | 'busy' | 'warned' => {
      const what = `hacks on ${n} (started with ${group.join('+')})`
      if (r.timedOut) fail(`${what} timed out`)
      if (r.exitCode === 75) {
        if (group.filter((x) => x === n).length < 2) fail(`${what} exited 75 (lock busy) with no other run of ${n}`)
        if (r.stdout !== '' || r.stderr !== '') fail(`${what} exited 75 and printed:\n${r.stdout}${r.stderr}`)
        tally.busy++
        return 'busy'
      }
      if (r.exitCode !== 0) fail(`${what} exited ${r.exitCode}:\n${r.stderr}${r.stdout}`)
      if (redisUp === true) {
        if (errLines(r).length > 0) fail(`${what} with Redis up printed on stderr:\n${r.stderr}`)
        return 'ok'
      }
      if (redisUp === 'faulted' && errLines(r).length === 0) return 'ok'
      const w = clusterWarning(r)
      if ('problem' in w) fail(`${what} with Redis ${redisUp === false ? 'down' : 'failing under it'}: ${w.problem}`)
      tally.warned++
      return 'warned'
    }
    const appendDue = (sec: number): void => {
      for (const n of NODES) {
        const due = plan.failures.filter((f) => f.node === n && f.sec < sec && !model.appended[n].includes(f)).sort((x, y) => x.sec - y.sec)
        appendLines(nodes[n].log, due.map((f) => f2(at(0, f.sec), f.ip)))
        model.appended[n].push(...due)
      }
    }
    const group = async (runs: NodeName[], min: number, what: string): Promise<void> => {
      const results = await Promise.all(runs.map((n) => runNode(nodes[n], ['hacks'], min)))
      const reached: NodeName[] = []
      results.forEach((r, i) => {
        const n = runs[i] as NodeName
        note(n, min, r, up ? '' : ', Redis down')
        const got = checkRun(n, r, runs, up)
        if (got === 'busy') return
        model.local(n, what)
        if (got === 'ok') reached.push(n)
      })
      if (up) model.reach(reached, what)
    }

    /**
     * One run with a fault under it. A SIGKILL: once the run is over Redis starts again, empty or from the
     * snapshot taken just before the run (so whatever the run wrote is lost either way, and the run's own
     * report, a warning or none, says all the model needs). A SIGSTOP: once the run is over (it gave up after
     * timeoutSeconds), SIGCONT, and Redis runs what it had been sent: whether the run's push (one script for
     * all its keys, all or nothing) and any claim landed is read from Redis itself.
     */
    const faulted = async (n: NodeName, min: number, fault: Fault, what: string): Promise<void> => {
      const keep = join(redis.dir, 'snapshot.rdb')
      let snapshot: ReturnType<Model['save']> | undefined
      if (fault.kind === 'kill' && fault.restart === 'snapshot') {
        const saved = await redis.cli(['save'])
        if (saved.stdout.trim() !== 'OK') fail(`SAVE: ${saved.stdout}${saved.stderr}`)
        if (!copyIfThere(join(redis.dir, 'dump.rdb'), keep)) fail('SAVE wrote no dump.rdb')
        snapshot = model.save()
      }
      let acting: Promise<void> | undefined
      let actedAt = 0
      const act = (): void => {
        if (acting !== undefined) return
        actedAt = performance.now()
        if (fault.kind === 'kill') acting = redis.kill()
        else {
          redis.pause()
          acting = Promise.resolve()
        }
      }
      const trigger = fault.trigger
      const monitor = trigger.by === 'command' ? await onCommand({path: redis.socket}, undefined, n, trigger.k, act) : undefined
      let endedAt = 0
      const running = runNode(nodes[n], ['hacks'], min).then((x) => {
        endedAt = performance.now()
        return x
      })
      if (trigger.by === 'delay') {
        await sleep(trigger.ms)
        act()
      }
      const r = await running
      const seen = monitor?.seen().join(' ') ?? ''
      act()
      await acting
      monitor?.close()
      const late = actedAt >= endedAt
      tally.faults[fault.kind]++
      if (late) tally.faults.late++
      else if (monitor?.fired() === true) tally.faults.midway++
      note(n, min, r, `, Redis ${fault.kind === 'kill' ? 'SIGKILLed' : 'SIGSTOPped'} ${describeTrigger(trigger)}${late ? ' (after the run: it had ended)' : ''}${seen === '' ? '' : ` [seen: ${seen}]`}`)
      if (!late && fault.kind === 'pause' && r.ms > 10_000) fail(`hacks on ${n} with Redis hung took ${Math.round(r.ms)} ms (timeoutSeconds 1)`)
      const got = checkRun(n, r, [n], 'faulted')
      model.local(n, what)
      if (got === 'ok') {
        model.reach([n], what)
        tally.faults.finished++
      } else {
        tally.faults.warned++
      }
      if (fault.kind === 'kill') {
        if (snapshot !== undefined) {
          copyIfThere(keep, join(redis.dir, 'dump.rdb'))
          rmSync(keep, {force: true})
          model.restore(snapshot)
        } else {
          model.lose()
        }
        await redis.start()
        return
      }
      redis.resume()
      // Whatever the hung server had been sent is run before it answers this.
      await sleep(50)
      if ((await redis.cli(['ping'])).stdout.trim() !== 'PONG') fail('Redis does not answer after SIGCONT')
      await reconcile(n, what)
    }

    /** After a SIGSTOP: what of node n's waiting failures, and which claims, Redis holds (see faulted). */
    const reconcile = async (n: NodeName, what: string): Promise<void> => {
      const held = new Set((await redis.cli(['hkeys', 'rcguard:b:master'])).stdout.split('\n').filter((x) => x !== ''))
      const claimed = [...held].filter((ip) => !model.blocked.has(ip))
      const pending = model.pending(n)
      // Addresses whose count says whether the push landed: not blocked anywhere (a claim drops failures).
      const telling = [...new Set(pending.map((f) => f.ip))].filter((ip) => !model.blocked.has(ip) && !held.has(ip))
      const counts = new Map<string, number>()
      for (const ip of telling) counts.set(ip, Number((await redis.cli(['zcard', `rcguard:f:master:${ip}`])).stdout.trim()))
      // Each push is one script (all of it or nothing), but several runs may have given up on a hung Redis one
      // after the other, each sending what waited then: what landed is the first k waiting failures, for one k.
      const holds = (k: number): boolean => telling.every((ip) => counts.get(ip) === model.inRedis(ip) + pending.slice(0, k).filter((f) => f.ip === ip).length)
      let k = telling.length === 0 ? 0 : pending.length
      while (k >= 0 && !holds(k)) k--
      const none = k <= 0
      const all = k > 0
      if (k < 0) fail(`after SIGCONT, Redis holds what no push of ${n} held: ${telling.map((ip) => `${ip} ${counts.get(ip)} (model ${model.inRedis(ip)} + ${pending.filter((f) => f.ip === ip).length} waiting)`).join(', ')}`)
      if ((all && !none) || claimed.length > 0) {
        model.landed(n, Math.max(k, claimed.length > 0 ? pending.length : 0))
        if (pending.length > 0) tally.faults.landed++
        transcript.push(`# after SIGCONT: ${n}'s push of ${pending.length} failure(s) had landed${claimed.length > 0 ? `; claims: ${claimed.join(' ')}` : ''}`)
      }
      for (const ip of claimed) {
        if (model.inRedis(ip) < THRESHOLD) fail(`after SIGCONT, Redis holds a block of ${ip}, with ${model.inRedis(ip)} of its failures in Redis by the model (${what})`)
        if (!model.claims.has(ip)) tally.faults.claimed++
        model.claims.add(ip)
      }
    }

    // Every log's first (empty) read, at once.
    await group([...NODES], -1, 'the first runs')

    for (const slot of plan.slots) {
      appendDue(Math.round(slot.min * 60))
      const what = describe(slot)
      if (slot.before === 'stop') {
        await redis.stop()
        up = false
      } else if (slot.before === 'start') {
        await redis.start()
        up = true
      } else if (slot.before === 'empty') {
        await redis.restartEmpty()
        model.redis = new Set()
      }
      transcript.push(`# ${what}`)
      if (slot.fault === undefined) {
        await group(slot.runs, slot.min, what)
        continue
      }
      await faulted(slot.runs[0] as NodeName, slot.min, slot.fault, what)
    }

    // Redis up, every line written, every node twice in turn.
    appendDue(SPAN_S + 1)
    if (!up) {
      await redis.start()
      up = true
    }
    transcript.push('# the last two rounds')
    for (const min of [10, 10.5]) for (const n of NODES) await group([n], min, `the last rounds @${min}`)

    // (a) and (b).
    const blocked = {} as Record<NodeName, Set<string>>
    for (const n of NODES) blocked[n] = await blockedOn(nodes[n], 10.75)
    const ips = [...new Set(plan.failures.map((f) => f.ip))]
    const totals = new Map(ips.map((ip) => [ip, plan.failures.filter((f) => f.ip === ip).length]))
    const problems: string[] = []
    for (const ip of ips) {
      const total = totals.get(ip) as number
      const holders = NODES.filter((n) => blocked[n].has(ip))
      if (model.blocked.has(ip)) {
        tally.verdicts.blocked++
        if (holders.length !== NODES.length) problems.push(`(a) ${ip} (${total} failures; blocked by ${model.because.get(ip)}) is blocked on ${holders.join(', ') || 'no node'}, not on every node`)
        continue
      }
      if (total < THRESHOLD) tally.verdicts.under++
      else tally.verdicts.lost++
      const why = total < THRESHOLD ? `${total} failures in the cluster` : `${total} failures, of which Redis lost ${total - model.inRedis(ip)} (the model: ${model.inRedis(ip)} left)`
      if (holders.length > 0) problems.push(`(b) ${ip} (${why}) is blocked on ${holders.join(', ')}`)
      const card = (await redis.cli(['zcard', `rcguard:f:master:${ip}`])).stdout.trim()
      if (card !== String(model.inRedis(ip))) problems.push(`(b) ${ip} (${why}): Redis holds ${card} of its failures, the model ${model.inRedis(ip)}`)
    }
    if (problems.length > 0) {
      const dump = await redis.dump()
      fail(`${problems.join('\n')}\nlist --json (blocked): ${NODES.map((n) => `${n}: ${[...blocked[n]].join(' ')}`).join('; ')}\nRedis: ${JSON.stringify(dump)}`)
    }
    tally.trials++
  } finally {
    tally.seconds += (performance.now() - t0) / 1000
    await sc.close()
  }
}

test(`random schedules of failures, overlapping runs and Redis faults over three nodes: every address blocked on every node iff the cluster counted 6 of its failures once each (${TRIALS} trials)`, async (t) => {
  if (!requireRedis(t)) return
  const tally: Tally = {trials: 0, runs: 0, busy: 0, warned: 0, faults: {kill: 0, pause: 0, warned: 0, finished: 0, late: 0, midway: 0, landed: 0, claimed: 0}, verdicts: {blocked: 0, under: 0, lost: 0}, seconds: 0}
  const t0 = performance.now()
  const seeds = Array.from({length: TRIALS}, (_, i) => SEED + i)
  const failed: string[] = []
  await pool(seeds, WORKERS, async (seed) => {
    try {
      await trial(seed, tally)
    } catch (err) {
      failed.push(err instanceof Error ? err.message : String(err))
    }
  })
  console.log(
    `cluster trials: ${tally.trials} of ${TRIALS} passed, first seed ${SEED}; ${tally.runs} hacks runs, ${tally.busy} found the lock busy (75), ${tally.warned} warned of Redis; ` +
      `faults under ${tally.faults.kill + tally.faults.pause} runs (${tally.faults.kill} SIGKILL, ${tally.faults.pause} SIGSTOP): ${tally.faults.warned} runs warned and went on alone, ${tally.faults.finished} had finished with Redis first; ` +
      `${tally.faults.midway} struck inside the run's exchange (MONITOR), ${tally.faults.late} after the run had ended; after a SIGSTOP, ${tally.faults.landed} pushes and ${tally.faults.claimed} claims the run had given up on landed all the same; ` +
      `addresses: ${tally.verdicts.blocked} blocked, ${tally.verdicts.under} under the threshold, ${tally.verdicts.lost} with 6+ failures of which Redis lost some; ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s (${tally.seconds.toFixed(1)} s of trials, ${WORKERS} at once)`,
  )
  assert.deepEqual(failed, [], `${failed.length} of ${TRIALS} trials failed (first seed ${SEED})`)
})

/**
 * The cluster keeps failures for the longest window plus 2 minutes (12 min here) before *now*, when they are
 * pushed (scripts.ts PUSH: ZREMRANGEBYSCORE below max(newest, now) - keepMs). A node's failures that waited
 * longer than that (Redis down, or the node's cron stalled, for 13 minutes or more) are dropped the moment
 * they arrive, and the failures of the other nodes with them, though the window they complete would still be
 * a block in force (blockMinutes 60). A node's own Decider, reading the same lines as late, blocks them.
 */
test('an outage longer than 12 minutes: the failures that waited for Redis still count (3 on a before it + 3 on b during it block)', async (t) => {
  if (!requireRedis(t)) return
  const redis = await startRedis(t)
  const [a, b, c] = NODES.map((n) => trialNode(t, n, {redis: redis.url, node: n}))
  for (const n of [a, b, c] as TrialNode[]) assert.equal((await runNode(n, ['hacks'], -1)).exitCode, 0)
  const X = '203.0.113.9'
  const Z = '203.0.113.10'
  appendLines((a as TrialNode).log, [0, 10, 20].map((s) => f2(at(1, s), X)))
  const r1 = await runNode(a as TrialNode, ['hacks'], 1.5)
  assert.deepEqual([r1.exitCode, r1.stderr], [0, ''], 'a pushes its 3 failures')
  await redis.stop()
  appendLines((b as TrialNode).log, [0, 10, 20].map((s) => f2(at(3, s), X)))
  appendLines((c as TrialNode).log, burst(at(3), Z, 6, 10))
  const r2 = await runNode(b as TrialNode, ['hacks'], 3.5)
  assert.equal(r2.exitCode, 0)
  assert.ok(!('problem' in clusterWarning(r2)), `b warns once with Redis down:\n${r2.stderr}`)
  await redis.start()
  // Redis back 16.5 minutes later: the window (3 + 3, complete at 13:03:20) is a block until 14:03:20.
  const r3 = await runNode(b as TrialNode, ['hacks'], 20)
  assert.deepEqual([r3.exitCode, r3.stderr], [0, ''], 'b reaches Redis again and pushes its 3 failures')
  // The contrast: a node's own 6 failures, read as late, block it (its Decider keeps failures by their own times).
  const r4 = await runNode(c as TrialNode, ['hacks'], 20)
  assert.equal(r4.exitCode, 0)
  assert.match(r4.stdout, /^blocked 203\.0\.113\.10 on master until 2026-11-25 14:03:50Z/m, `c blocks its own 6 failures read 17 minutes late:\n${r4.stdout}`)
  const keys = await redis.keys()
  for (const n of [a, c] as TrialNode[]) assert.equal((await runNode(n, ['hacks'], 20.5)).exitCode, 0)
  const held = await Promise.all([a, b, c].map((n) => blockedOn(n as TrialNode, 20.75)))
  assert.deepEqual(
    held.map((s) => s.has(X)),
    [true, true, true],
    `3 failures on a (pushed at 13:01:30) and 3 on b (counted at 13:03:30 with Redis down, pushed at 13:20) complete a window at 13:03:20, a block until 14:03:20 still in force at 13:20: blocked on every node. b's run blocked nothing:\n${r3.stdout}\nRedis keys after b's push: ${keys.join(' ')}`,
  )
})
