/**
 * Generated timelines through the whole pipeline (hacks' cycle on a real
 * log, database and configuration): a slow guesser, a scanner walking user
 * names, a /24 swarm, an IPv6 /48 swarm, a 40-address stuffing run against
 * one account, and the legitimate cases (an office NAT with many users and
 * typos, a phone retrying a stale password every 3 minutes, a forgotten
 * password) are blocked, reported and left alone as the rules say, however
 * fast-check splits the three hours into cron runs, rotates the log between
 * them, and swaps lines written within seconds of each other.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import fc from 'fast-check'
import {validateConfig} from '../../src/core/config/config.js'
import {createBackend, ExecaRunner} from '../../src/core/firewall/index.js'
import type {GuardContext} from '../../src/core/run/context.js'
import {hacks} from '../../src/core/run/pipeline.js'
import {JsonStore} from '../../src/core/store/json-store.js'
import {fileDate, tempDir} from '../helpers/env.js'

const T0 = Date.UTC(2026, 10, 25, 9, 0, 0)
const SEC = 1000
const MIN = 60 * SEC

interface Line {
  time: number
  text: string
}

let sid = 0
function fail(time: number, ip: string, user: string): Line {
  const s = `z${String(++sid % 10_000_000).padStart(7, '0')}`
  return {time, text: `${fileDate(new Date(time))}: <${s}> Failed login for ${user} from ${ip} in session ${s}abcdefgh (error: 0)`}
}
function success(time: number, ip: string, user: string): Line {
  const s = `y${String(++sid % 10_000_000).padStart(7, '0')}`
  return {time, text: `${fileDate(new Date(time))}: <${s}> Successful login for ${user} (ID: 7) from ${ip} in session ${s}abcdefgh`}
}

/** The three hours, in time order (stable for equal times). */
function timeline(): Line[] {
  const out: Line[] = []
  // Slow guesser: one failure every 130 s for two hours, one name (never 6 in 10 minutes).
  for (let i = 0; i < 55; i++) out.push(fail(T0 + i * 130 * SEC, '100.100.0.1', 'admin'))
  // Scanner: a new name every 9 minutes.
  for (const [i, u] of ['admin', 'root', 'info', 'test', 'webmaster', 'sales'].entries()) out.push(fail(T0 + 3 * MIN + i * 9 * MIN, '100.101.0.1', u))
  // /24 swarm: 30 addresses, twice each, over 40 minutes.
  for (let i = 0; i < 30; i++) for (const k of [0, 1]) out.push(fail(T0 + 60 * MIN + i * 80 * SEC + k * 20 * SEC, `198.51.100.${i + 10}`, `u${i}`))
  // IPv6 /48 swarm: 12 addresses, each in its own /64.
  for (let i = 0; i < 12; i++) out.push(fail(T0 + 90 * MIN + i * 2 * MIN, `2001:db8:77:${i + 1}::5`, 'postmaster'))
  // Stuffing: 40 addresses of 40 networks on one account in 8 minutes; every 8th fails twice.
  for (let i = 0; i < 40; i++) {
    const t = T0 + 120 * MIN + i * 12 * SEC
    out.push(fail(t, `100.64.${i}.7`, 'ceo@example.org'))
    if (i % 8 === 0) out.push(fail(t + 3 * SEC, `100.64.${i}.7`, 'CEO@example.org'))
  }
  // Office NAT: 40 users, a typo then the right password, one every 4 minutes, all three hours.
  for (let i = 0; i < 45; i++) {
    out.push(fail(T0 + i * 4 * MIN + 30 * SEC, '100.127.0.1', `staff${i}`))
    out.push(success(T0 + i * 4 * MIN + 50 * SEC, '100.127.0.1', `staff${i}`))
  }
  // A phone with a stale password, every 3 minutes.
  for (let i = 0; i < 60; i++) out.push(fail(T0 + i * 3 * MIN + 7 * SEC, '100.127.0.2', 'carol'))
  // A forgotten password: five tries, then five more an hour later, two spellings.
  for (const base of [20, 80]) for (let i = 0; i < 5; i++) out.push(fail(T0 + base * MIN + i * 90 * SEC, '100.127.0.3', i % 2 === 0 ? 'dave' : 'Dave@example.org'))
  return out.sort((a, b) => a.time - b.time)
}

const EXPECTED = [
  '100.100.0.1 failures:24/60',
  '100.101.0.1 users:5/60',
  '198.51.100.0/24 network:10/60',
  '2001:db8:77::/48 network:10/60',
  // The stuffing addresses that failed on the account twice.
  ...[0, 8, 16, 24, 32].map((i) => `100.64.${i}.7 account:20/10`),
].sort()

test('property: generated attack and legitimate timelines, split into cron runs with rotation and local disorder, block exactly as the rules say', async (t) => {
  const lines = timeline()
  const end = lines[lines.length - 1]?.time ?? T0
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.integer({min: 1, max: lines.length - 1}), {maxLength: 5}),
      fc.array(fc.boolean(), {minLength: 5, maxLength: 5}),
      fc.array(fc.nat({max: lines.length - 2}), {maxLength: 40}),
      async (cuts, rotate, swaps) => {
        const order = [...lines]
        // Lines written within 5 s of each other by parallel web server processes may land in either order.
        for (const i of swaps) {
          const [a, b] = [order[i] as Line, order[i + 1] as Line]
          if (b.time - a.time <= 5 * SEC) [order[i], order[i + 1]] = [b, a]
        }
        const dir = tempDir(t, 'rcguard-timelines-')
        const log = join(dir, 'userlogins.log')
        writeFileSync(log, '')
        const config = validateConfig(
          {
            database: join(dir, 'db.json'),
            // Long enough that a block made early in the three hours is still in force at a single last run.
            blockMinutes: 600,
            instances: [{name: 'master', logs: [log], ports: [443]}],
            firewall: {backend: 'none', ipv6Prefix: 64},
            networkBlock: {minAddresses: 10, periodMinutes: 60},
            accountAlert: {minAddresses: 20, periodMinutes: 10, block: true},
          },
          'timelines',
          dir,
        )
        let now = T0 - MIN
        const ctx: GuardContext = {config, store: new JsonStore(config.database), firewall: createBackend(config, new ExecaRunner()), now: () => now}
        // The first run sees the empty log: every line after it is new (no first-read cut-off).
        await hacks(ctx, {dryRun: false})
        const blocked: string[] = []
        const accounts: string[] = []
        const bounds = [0, ...[...cuts].sort((a, b) => a - b), order.length]
        for (let k = 0; k + 1 < bounds.length; k++) {
          const chunk = order.slice(bounds[k], bounds[k + 1])
          if (k > 0 && rotate[k - 1] === true) {
            renameSync(log, `${log}.1`)
            writeFileSync(log, '')
          }
          appendFileSync(log, chunk.map((l) => `${l.text}\n`).join(''))
          now = Math.max(...chunk.map((l) => l.time)) + 30 * SEC
          const r = await hacks(ctx, {dryRun: false})
          blocked.push(...r.newlyBlocked.map((b) => `${b.ip} ${b.rule}`))
          accounts.push(...r.accountAlerts.map((a) => a.account))
        }
        assert.equal(now, end + 30 * SEC)
        assert.deepEqual([...new Set(blocked)].sort(), EXPECTED)
        assert.deepEqual(accounts, ['ceo@example.org'])
      },
    ),
    {seed: 1313, numRuns: 40},
  )
})
