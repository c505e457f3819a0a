import {writeFileSync, mkdirSync} from 'node:fs'
import {loginAttempt, LogSet, type Install} from '../test/helpers/roundcube-writer.js'
const out = process.argv[2] ?? '/tmp/parse-work/pairs'
const driver = (process.argv[3] ?? 'file') as Install['driver']
const n = Number(process.argv[4] ?? 20000)
mkdirSync(out, {recursive: true})
let seed = 42
const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
const pick = <T>(a: T[]) => a[Math.floor(rand() * a.length)] as T
const install: Install = {version: '1.6', logLogins: true, driver}
const set = new LogSet(install)
const ips = Array.from({length: 300}, (_, i) => (i % 5 === 0 ? `2001:db8:${i}::${i % 7}` : `198.18.${i % 250}.${(i * 7) % 250 + 1}`))
const users = ['admin', 'info@example.com', 'bob', 'Alice@Example.com', 'x from 192.0.2.1', 'line\nfeed', 'test', '']
let t = Date.UTC(2026, 10, 25, 12)
for (let i = 0; i < n; i++) {
  t += Math.floor(rand() * 3000)
  const sid = Array.from({length: 16}, () => pick([...'abcdefghijklmnopqrstuv0123456789'])).join('')
  const remoteAddr = pick(ips)
  const req = {uri: pick(['/?_task=login', '/?_task=login&_action=login', '/']), body: `_task=login&_action=login&_user=${encodeURIComponent(pick(users))}&_pass=pw`, remoteAddr, sessionId: rand() < 0.1 ? pick(['aaaaaaaabbbbbbbb', '']) : sid, validToken: rand() < 0.95, locked: rand() < 0.1, ...(rand() < 0.2 ? {xForwardedFor: pick(ips)} : {})}
  set.add(i, loginAttempt(install, req, t))
}
const {files} = set.render()
for (const [f, b] of files) writeFileSync(`${out}/${driver}-${f}`, b)
console.log([...files.keys()].map((f) => `${out}/${driver}-${f}`).join(' '))
