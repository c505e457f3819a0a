/**
 * Captures test/fixtures/lab/: drives the scenarios of lab-scenarios.ts at the lab Roundcube and saves, per
 * group and log destination, exactly the bytes Roundcube (or rsyslog) appended while the group ran, plus a
 * manifest of the attempts. Run as root with the lab up:
 *
 *   node --import tsx test/e2e/capture-lab.ts [group...]
 *
 * Not a test (no .test.ts): the fixtures are captured once and committed unedited.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {appended, driveAll, settle, sizes, type AttemptResult} from './lab-driver.js'
import {headers, injection, long, rateLimit, success, uris, type Options, type Scenario} from './lab-scenarios.js'
import {ROOT} from '../helpers/env.js'

const OUT = join(ROOT, 'test', 'fixtures', 'lab')
const FILE_LOGS = {errors: '/var/log/roundcube/errors.log', userlogins: '/var/log/roundcube/userlogins.log'}
const SYSLOG_LOGS = {
  rfc3339: '/var/log/roundcube-syslog-rfc3339.log',
  traditional: '/var/log/roundcube-syslog-traditional.log',
  syslog: '/var/log/syslog',
}

interface Group {
  name: string
  logs: Record<string, string>
  /** Batches run one after the other (the rate-limit owner after its attackers). */
  batches: Scenario[][]
}

function manifestEntry(a: Scenario, r: AttemptResult | undefined) {
  const viaProxy = a.src === '127.0.0.1'
  return {
    id: a.id,
    source: a.src,
    viaProxy,
    host: a.host ?? 'localhost',
    user: r?.user ?? a.user,
    userBytes: Buffer.byteLength(r?.user ?? a.user),
    password: a.pass ?? 'wrong-password',
    headers: a.headers ?? [],
    method: 'POST',
    uri: a.uri ?? '/roundcube/?_task=login',
    bodyTask: a.bodyTask === undefined ? 'login' : a.bodyTask,
    bodyAction: a.bodyAction === undefined ? 'login' : a.bodyAction,
    token: a.token !== false,
    expectedSender: a.sender ?? a.src,
    victims: a.victims ?? [],
    expect: a.expect,
    note: a.note ?? '',
    httpStatus: r?.status ?? null,
    sessionPrefix: r?.session.slice(0, 8) ?? '',
    session: r?.session ?? '',
    startedAt: r?.startedAt ?? null,
    endedAt: r?.endedAt ?? null,
  }
}

async function runGroup(g: Group): Promise<void> {
  const files = Object.values(g.logs)
  await settle(files, 1000)
  const before = sizes(files)
  const results = new Map<string, AttemptResult>()
  for (const batch of g.batches) for (const r of await driveAll(batch, 6)) results.set(r.id, r)
  await settle(files, 2000)
  const attempts = g.batches.flat().map((a) => manifestEntry(a, results.get(a.id)))
  for (const [dest, file] of Object.entries(g.logs)) {
    const bytes = appended(file, before.get(file) ?? 0)
    const base = `${g.name}.${dest}.log`
    writeFileSync(join(OUT, base), bytes)
    writeFileSync(
      join(OUT, `${g.name}.${dest}.manifest.json`),
      `${JSON.stringify(
        {
          fixture: base,
          capturedFrom: file,
          destination: dest,
          roundcube: 'Debian roundcube-core 1.6.5+dfsg-1+deb12u13 (lab: /work/shared/lab/roundcube-lab.sh)',
          config: {log_logins: true, login_rate_limit: 3, proxy_whitelist: ['127.0.0.1'], log_session_id: 8, login_lc: 2},
          note: 'the bytes are what was appended to the log while these attempts ran, unedited',
          bytes: bytes.length,
          attempts,
        },
        null,
        2,
      )}\n`,
    )
    console.log(`${base}: ${bytes.length} bytes, ${attempts.length} attempts`)
  }
}

const now = new Date()
const o = (net: string, tag: string, host: string): Options => ({net, tag, now, host, hostname: hostname()})
const f = o('127.0.1', 'fx', 'localhost')
const sy = o('127.0.2', 'sy', 'syslog.localhost')
const rl = rateLimit(o('127.0.3', '', 'localhost'), 'alice', 'alicepass')
const rlSys = rateLimit(o('127.0.4', '', 'syslog.localhost'), 'carol@example.test', 'carolpass')
const pick = (xs: Scenario[], ids: string[]) => xs.filter((x) => ids.includes(x.id))

const groups: Group[] = [
  {name: 'file-injection', logs: FILE_LOGS, batches: [injection(f)]},
  {name: 'file-long', logs: FILE_LOGS, batches: [long(f)]},
  {name: 'file-headers', logs: FILE_LOGS, batches: [headers(f)]},
  {name: 'file-uris', logs: FILE_LOGS, batches: [uris(f)]},
  // The attackers one after the other: run in parallel, Roundcube's failed_login() loses updates (each sets
  // the counter to 1) and the owner is not locked out (the *-ratelimit-parallel captures).
  {name: 'file-ratelimit', logs: FILE_LOGS, batches: [...rl.attackers.map((a) => [a]), rl.owner, success(o('127.0.3', '', 'localhost'), 'bob', 'bobpass')]},
  {name: 'file-ratelimit-parallel', logs: FILE_LOGS, batches: [rl.attackers, rl.owner, success(o('127.0.3', '', 'localhost'), 'bob', 'bobpass')]},
  {
    name: 'syslog-injection',
    logs: SYSLOG_LOGS,
    batches: [
      [
        ...pick(injection(sy), ['plain', 'plain-v6', 'lf-f2-env', 'lf-f2-bare', 'lf-f1-env', 'lf-f4', 'lf-f3', 'lf-mixedcase', 'lf-syslog-env', 'lf-many-12', 'lf-40-bare', 'cr-f2', 'crlf-f2', 'tab', 'inline-f2', 'head-f2', 'head-f2-own-session', 'head-f1', 'tag-stripped']),
        ...pick(long(sy), ['long-300-tail', 'long-1000', 'long-1100', 'utf8-cut-256']),
      ],
    ],
  },
  {name: 'syslog-headers', logs: SYSLOG_LOGS, batches: [pick(headers(sy), ['direct-xff', 'direct-xff-group', 'direct-xri-comma', 'direct-xff-repeated', 'proxy-append', 'proxy-append-forged', 'proxy-append-group', 'proxy-xri', 'proxy-user-lf'])]},
  {name: 'syslog-ratelimit', logs: SYSLOG_LOGS, batches: [...rlSys.attackers.map((a) => [a]), rlSys.owner, success(o('127.0.4', '', 'syslog.localhost'), 'bob', 'bobpass')]},
  {name: 'syslog-ratelimit-parallel', logs: SYSLOG_LOGS, batches: [rlSys.attackers, rlSys.owner, success(o('127.0.4', '', 'syslog.localhost'), 'bob', 'bobpass')]},
]

mkdirSync(OUT, {recursive: true})
const wanted = process.argv.slice(2)
for (const g of groups) if (wanted.length === 0 ? !g.name.endsWith('-parallel') : wanted.includes(g.name)) await runGroup(g)
