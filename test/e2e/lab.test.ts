/**
 * End to end against a REAL Roundcube (the lab of shared/lab/roundcube-lab.sh: Debian's roundcube-core 1.6.5,
 * Apache, Dovecot, rsyslog, all on loopback). Drives a bounded set of adversarial login attempts, takes only the
 * bytes the logs gained meanwhile, and checks what bin/run.js makes of them: every real attempt is counted exactly
 * once against the address that really sent it (errors and userlogins together), and no address planted in a
 * user name or a header is ever counted.
 *
 * Needs root (the lab installs packages and starts daemons). Without root it skips and says why; with CI=true a
 * skip fails. The lab script is looked up at <repo>/../shared/lab, else /work/shared/lab.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {randomInt} from 'node:crypto'
import {execa} from 'execa'
import {cli, isRoot, ROOT, tempDir} from '../helpers/env.js'
import {appended, driveAll, settle, sizes, type AttemptResult} from './lab-driver.js'
import {headers, injection, long, rateLimit, success, uris, type Scenario} from './lab-scenarios.js'
import type {EventJson} from '../../src/ui/json-stream.js'

/** The lab Roundcube's SQLite database (Debian's dbconfig-common path). */
const ROUNDCUBE_DB = '/var/lib/dbconfig-common/sqlite3/roundcube/roundcube'

const BIN_BUILT = join(ROOT, 'dist', 'index.js')
const LAB_SCRIPT = [join(ROOT, '..', 'shared', 'lab', 'roundcube-lab.sh'), '/work/shared/lab/roundcube-lab.sh'].find((p) => existsSync(p))

const LOGS = {
  errors: '/var/log/roundcube/errors.log',
  userlogins: '/var/log/roundcube/userlogins.log',
  rfc3339: '/var/log/roundcube-syslog-rfc3339.log',
  traditional: '/var/log/roundcube-syslog-traditional.log',
}

function requireLab(t: TestContext): string | undefined {
  const reason = !isRoot
    ? 'needs root to set up and drive the Roundcube lab (shared/lab/roundcube-lab.sh)'
    : LAB_SCRIPT === undefined
      ? 'the lab script shared/lab/roundcube-lab.sh is neither at <repo>/../shared nor at /work/shared'
      : undefined
  if (reason === undefined) return LAB_SCRIPT
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}: the lab test must run in CI`)
  t.skip(reason)
  return undefined
}

/** What `scan --json` prints: its events, as the command writes them, and the warnings. */
type ScanEvent = EventJson

interface ScanJson {
  events: ScanEvent[]
  warnings: string[]
}

/** Counted events per address. */
function countsOf(events: ScanEvent[]): Map<string, ScanEvent[]> {
  const m = new Map<string, ScanEvent[]>()
  for (const e of events) if (e.counted && e.ip !== null) m.set(e.ip, [...(m.get(e.ip) ?? []), e])
  return m
}

const show = (es: ScanEvent[] | undefined) =>
  (es ?? []).map((e) => `${e.file.replace(/.*\//, '')}:${e.line} ${e.grammar} ${JSON.stringify(e.user).slice(0, 80)}`).join('; ') || 'none'

/**
 * The assertions for one set of attempts against one scan: a subtest per attempt, so a failure names the
 * attempt. `once`: each exact attempt must be counted exactly once (false: at most once, for a single log that
 * may lack the line).
 */
async function checkAttempts(t: TestContext, label: string, scenarios: Scenario[], events: ScanEvent[], once: boolean, alone = false): Promise<void> {
  const counts = countsOf(events)
  const senders = new Set(scenarios.filter((s) => s.expect === 'exact' || s.expect === 'ambiguous').map((s) => s.sender ?? s.src))
  for (const s of scenarios) {
    const sender = s.sender ?? s.src
    const got = counts.get(sender)
    // Text syslog without process ids cannot tell a client's own later pieces from an earlier entry's: a user name
    // with a newline there may leave its attempt counted for nobody (with a warning), never for anyone else.
    const splitInSyslog = label.startsWith('syslog') && (s.user.includes('\n') || s.userFromSession !== undefined)
    if (s.expect === 'exact' && once && !(alone && s.aloneF2 === 'ambiguous') && !splitInSyslog) {
      await t.test(`${label}: ${s.id} is counted exactly once against its sender ${sender}`, () => {
        assert.equal(got?.length ?? 0, 1, `${s.id}: counted against ${sender}: ${show(got)}`)
      })
    } else if (s.expect === 'exact' || s.expect === 'ambiguous') {
      await t.test(`${label}: ${s.id} is counted at most once against its sender ${sender}`, () => {
        assert.ok((got?.length ?? 0) <= 1, `${s.id}: counted against ${sender}: ${show(got)}`)
      })
    } else if (s.expect === 'none') {
      await t.test(`${label}: ${s.id} (a success, or a refusal others caused) is not counted against ${sender}`, () => {
        assert.equal(got?.length ?? 0, 0, `${s.id}: counted against ${sender}: ${show(got)}`)
      })
    }
    for (const v of s.victims ?? []) {
      if (senders.has(v)) continue
      await t.test(`${label}: ${s.id} never counts the planted address ${v}`, () => {
        assert.equal(counts.get(v)?.length ?? 0, 0, `${s.id}: ${v} was counted: ${show(counts.get(v))}`)
      })
    }
  }
  await t.test(`${label}: nothing is counted against an address that sent nothing`, () => {
    const strangers = [...counts].filter(([ip]) => !senders.has(ip) && !scenarios.some((s) => s.expect === 'observe' && (s.sender ?? s.src) === ip))
    assert.deepEqual(strangers.map(([ip, es]) => `${ip}: ${show(es)}`), [])
  })
}

async function scanJson(args: string[]): Promise<ScanJson> {
  const r = await cli([...args, '--json'])
  assert.equal(r.exitCode, 0, `rcguard ${args.join(' ')} exited ${r.exitCode}: ${r.stderr}`)
  return JSON.parse(r.stdout) as ScanJson
}

test('real Roundcube 1.6 lab: every adversarial attempt counts once against its real sender, never against a planted address', {timeout: 15 * 60_000}, async (t) => {
  const script = requireLab(t)
  if (script === undefined) return
  const t0 = Date.now()
  const lab = await execa('bash', [script], {reject: false, all: true, timeout: 10 * 60_000})
  assert.equal(lab.exitCode, 0, `roundcube-lab.sh failed:\n${lab.all}`)
  assert.ok(existsSync(BIN_BUILT), 'the build is missing: run npm run build (npm test does)')

  // Senders 127.R.S.N, fresh each run; bait addresses are documentation addresses.
  const r = randomInt(10, 250)
  const tag = `e2e${randomInt(1000, 9999)}`
  const now = new Date()
  const pick = (xs: Scenario[], ids: string[]) => ids.map((id) => xs.find((x) => x.id === id) ?? assert.fail(`no scenario ${id}`))
  const fo = {net: `127.${r}.1`, tag, now, host: 'localhost', hostname: 'lab'}
  const so = {net: `127.${r}.2`, tag, now, host: 'syslog.localhost', hostname: 'lab'}
  const fileSet: Scenario[] = [
    ...pick(injection(fo), ['plain', 'plain-v6', 'lf-f2-env', 'lf-f2-bare', 'lf-f2-future', 'lf-f1-env', 'lf-f4', 'lf-f3', 'lf-mixedcase', 'lf-40-pieces', 'cr-f2', 'tab', 'inline-f2', 'inline-f1', 'head-f2', 'head-f2-own-session', 'head-f1', 'head-both', 'tag-stripped']),
    ...pick(long(fo), ['long-300-tail', 'long-1100-early-lf']),
    ...pick(headers(fo), ['direct-xff', 'direct-xff-group', 'direct-xff-tail', 'direct-xri-comma', 'direct-xff-repeated', 'proxy-append', 'proxy-append-forged', 'proxy-append-group', 'proxy-append-xri-forged', 'proxy-xri', 'proxy-user-lf']),
    ...pick(uris(fo), ['uri-other-task', 'uri-percent', 'uri-paren-from', 'body-task-mail', 'no-token']),
    ...success(fo, 'carol@example.test', 'carolpass'),
  ]
  const rl = rateLimit({...fo, net: `127.${r}.3`}, 'bob', 'bobpass')
  // Proxied clients must differ between the file and the syslog set: they share the proxy 127.0.0.1.
  const syslogProxy = (s: Scenario): Scenario =>
    s.sender === undefined
      ? s
      : {
          ...s,
          sender: s.sender.replace(/^192\.0\.2\./, '192.0.2.1'),
          headers: s.headers?.map(([k, v]) => [k, v.replace(/192\.0\.2\.(\d+)/g, '192.0.2.1$1')] as [string, string]),
        }
  const syslogSet: Scenario[] = [
    ...pick(injection(so), ['plain', 'plain-v6', 'lf-f2-env', 'lf-f1-env', 'lf-40-pieces', 'cr-f2', 'tab', 'head-f2-own-session', 'head-f1']),
    ...pick(long(so), ['long-300-tail']),
    ...pick(headers(so), ['direct-xff-group', 'direct-xri-comma', 'proxy-append-forged', 'proxy-user-lf']).map(syslogProxy),
  ]

  const files = Object.values(LOGS)
  // Roundcube rate-limits only an account it has a row of in its users table, made at the account's first
  // successful login: on a fresh lab bob has none, and nobody would be locked out. Log him in once first.
  const warm = await driveAll(rl.owner.map((s) => ({...s, id: `${s.id}-first`})), 1)
  assert.ok(warm.every((w) => w.status === 302), `bob's first login: ${warm.map((w) => w.status).join(', ')}`)
  await settle(files, 1000)
  // Roundcube keeps bob's login_rate_limit window in its database: a run less than a minute after the last
  // one would find the account still locked. Start it unlocked, as on a fresh lab.
  await execa('sqlite3', [ROUNDCUBE_DB, "UPDATE users SET failed_login = NULL, failed_login_counter = NULL WHERE username = 'bob'"])
  const before = sizes(files)
  const results: AttemptResult[] = []
  await Promise.all([
    driveAll(fileSet, 4).then((rs) => results.push(...rs)),
    driveAll(syslogSet, 3).then((rs) => results.push(...rs)),
    (async () => {
      // One after the other: in parallel Roundcube's failed_login() loses updates and locks nobody out.
      for (const a of [...rl.attackers, ...rl.owner]) results.push(...(await driveAll([a], 1)))
    })(),
  ])
  await settle(files, 2000)
  const driven = Date.now()
  const fileAll = [...fileSet, ...rl.attackers, ...rl.owner]

  await t.test('the lab answered every attempt as Roundcube does (401 refused, 302 logged in)', () => {
    const byId = new Map(results.map((x) => [x.id, x]))
    const bad = [...fileAll, ...syslogSet]
      .map((s) => ({s, res: byId.get(s.id)}))
      .filter(({s, res}) => res === undefined || (s.id === 'success' ? res.status !== 302 : s.id === 'body-task-mail' ? res.status !== 200 : res.status !== 401))
      .map(({s, res}) => `${s.id}: HTTP ${res?.status}`)
    assert.deepEqual(bad, [])
  })

  const dir = tempDir(t, 'rcguard-lab-')
  const copy: Record<string, string> = {}
  for (const [name, file] of Object.entries(LOGS)) {
    copy[name] = join(dir, `${name}.log`)
    writeFileSync(copy[name], appended(file, before.get(file) ?? 0))
  }
  await t.test('Roundcube wrote the rate-limit refusals (error 4) and lines for every set', () => {
    const ul = readFileSync(copy.userlogins as string, 'latin1')
    assert.match(ul, new RegExp(`Failed login for bob from 127\\.${r}\\.3\\.74 in session \\S+ \\(error: 4\\)`))
    assert.match(readFileSync(copy.rfc3339 as string, 'latin1'), new RegExp(`${tag}plain from 127\\.${r}\\.2\\.10 `))
    assert.match(readFileSync(copy.traditional as string, 'latin1'), new RegExp(`${tag}plain from 127\\.${r}\\.2\\.10 `))
  })

  const config = join(dir, 'rcguard.json')
  writeFileSync(
    config,
    JSON.stringify({
      database: join(dir, 'db', 'db.json'),
      whitelist: [],
      trustedProxies: ['127.0.0.1'],
      instances: [
        {name: 'file', logs: [copy.errors, copy.userlogins], ports: [80]},
        {name: 'rfc3339', logs: [{path: copy.rfc3339, format: 'rfc3339'}], ports: [80]},
        {name: 'traditional', logs: [{path: copy.traditional, format: 'syslog'}], ports: [80]},
      ],
      firewall: {backend: 'none'},
    }),
  )

  // All logs of each instance in one scan: an attempt in errors and userlogins counts once.
  const all = await scanJson(['scan', '--dry-run', '--config', config])
  await checkAttempts(t, 'file errors+userlogins', fileAll, all.events.filter((e) => e.instance === 'file'), true)
  await checkAttempts(t, 'syslog rfc3339', syslogSet, all.events.filter((e) => e.instance === 'rfc3339'), true)
  await checkAttempts(t, 'syslog traditional', syslogSet, all.events.filter((e) => e.instance === 'traditional'), true)
  await t.test('the client X-Real-IP passed through the appending proxy is named, with the fix', () => {
    assert.ok(all.warnings.some((w) => /trusted proxy 127\.0\.0\.1 not counted: its X-Real-IP and X-Forwarded-For name different clients.*header: x-forwarded-for/.test(w)), all.warnings.join('\n'))
  })
  await t.test('a text syslog source is named as forgeable by local users', () => {
    assert.ok(all.warnings.some((w) => /cannot tell Roundcube's records from those of any local user/.test(w)), all.warnings.join('\n'))
  })

  // Each log alone, replayed: userlogins has an F2 line for every attempt, so it alone must count each once;
  // errors.log lacks some (error 1 and 4 have none), so at most once there.
  const one = async (name: string, instance: string) =>
    (await scanJson(['scan', '--dry-run', '--replay', '--log', copy[name] as string, '--instance', instance, '--config', config])).events
  const alone = await scanJson(['scan', '--dry-run', '--replay', '--log', copy.userlogins as string, '--instance', 'file', '--config', config])
  await checkAttempts(t, 'userlogins.log replayed alone', fileAll, alone.events, true, true)
  await t.test('userlogins.log replayed alone: the lines that read two ways are named in a warning', () => {
    assert.ok(alone.warnings.some((w) => /imitates Roundcube's "from ADDR/.test(w)), alone.warnings.join('\n'))
  })
  await checkAttempts(t, 'errors.log replayed alone', fileAll, await one('errors', 'file'), false)
  t.diagnostic(`lab set-up ${Math.round((driven - t0) / 1000)} s including ${fileAll.length + syslogSet.length} attempts; total ${Math.round((Date.now() - t0) / 1000)} s`)
})
