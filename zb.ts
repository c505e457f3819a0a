import {readFileSync} from 'node:fs'
const raw = JSON.parse(readFileSync('/tmp/dbq/db100000.json', 'utf8'))
const cut = (u: string) => (u.length > 64 ? `${u.slice(0, 63)}…` : u)
const now = Number(readFileSync('/tmp/dbq/now', 'utf8'))
const es = raw.entries.map((e: any) => {
  const hist = e.blockedAt === null && e.lastSeen < now - 12 * 60000
  return {...e, lastUser: hist ? '' : cut(e.lastUser), users: hist ? [] : e.users.slice(-3).map(cut), failures: hist ? [] : e.failures}
})
const full = JSON.stringify(es)
const omit = JSON.stringify(es.map((e: any) => {
  const o: any = {ip: e.ip, instance: e.instance, attempts: e.attempts, firstSeen: e.firstSeen, lastSeen: e.lastSeen}
  if (e.failures.length) o.failures = e.failures
  if (e.blockedAt !== null) o.blockedAt = e.blockedAt
  if (e.blockedUntil !== null) o.blockedUntil = e.blockedUntil
  if (e.blocks) o.blocks = e.blocks
  if (e.lastBlockEnd !== null) o.lastBlockEnd = e.lastBlockEnd
  if (e.users.length) o.users = e.users
  if (e.lastUser !== (e.users.at(-1) ?? '')) o.lastUser = e.lastUser
  if (e.comment !== null) o.comment = e.comment
  return o
}))
const short = JSON.stringify(es.map((e: any) => {
  const o: any = {ip: e.ip, in: e.instance, a: e.attempts, fs: e.firstSeen, ls: e.lastSeen}
  if (e.failures.length) o.f = e.failures
  if (e.blockedAt !== null) o.ba = e.blockedAt
  if (e.blockedUntil !== null) o.bu = e.blockedUntil
  if (e.blocks) o.b = e.blocks
  if (e.lastBlockEnd !== null) o.be = e.lastBlockEnd
  if (e.users.length) o.u = e.users
  if (e.lastUser !== (e.users.at(-1) ?? '')) o.lu = e.lastUser
  if (e.comment !== null) o.c = e.comment
  return o
}))
const arr = JSON.stringify(es.map((e: any) => [e.ip, e.instance, e.attempts, e.firstSeen, e.lastSeen, e.blockedAt, e.blockedUntil, e.blocks, e.lastBlockEnd, e.comment, e.lastUser, e.failures, e.users]))
const arrRel = JSON.stringify(es.map((e: any) => [e.ip, e.instance, e.attempts, e.firstSeen, e.lastSeen - e.firstSeen, e.blockedAt, e.blockedUntil, e.blocks, e.lastBlockEnd, e.comment, e.lastUser, e.failures, e.users]))
for (const [name, s] of Object.entries({old: JSON.stringify(raw.entries), full, omit, short, arr})) {
  const t = performance.now(); for (let i = 0; i < 3; i++) JSON.parse(s); const p = (performance.now() - t) / 3
  const t2 = performance.now(); const b = Buffer.from(s); const t3 = performance.now(); b.toString('utf8'); const t4 = performance.now()
  console.log(name.padEnd(6), (Buffer.byteLength(s) / es.length).toFixed(0), 'B/entry', p.toFixed(0), 'ms parse', (t4 - t3).toFixed(0), 'ms decode')
}
