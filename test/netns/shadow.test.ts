/**
 * Rules of others that let blocked addresses past rcguard's (issue 11),
 * against the real kernel: a server namespace where rcguard runs and a
 * client namespace joined by a veth pair, real TCP packets between them.
 *
 * - iptables and ipset: an ACCEPT inserted above rcguard's hook rule lets a
 *   blocked address in; every run warns on stderr naming that rule, the
 *   exit status stays 0, --verbose names rcguard's rule it shadows and what
 *   to do, and doing it closes the hole. Accepts that cannot match a blocked
 *   address's packets to a guarded port warn nothing; an accept for a source
 *   network only warns while a blocked address is in it. An ESTABLISHED
 *   accept above rcguard's rule keeps a blocked address's open connection
 *   alive (without it rcguard cuts it). IPv4 and IPv6; iptables-nft and
 *   iptables-legacy, whose accept does not bypass iptables-nft's rules.
 * - DOCKER-USER (a third, routing namespace): a RETURN above rcguard's rule
 *   and an ACCEPT in FORWARD above the jump to DOCKER-USER both let a
 *   blocked address through to the server behind it.
 * - nftables: a foreign accept at an earlier priority of the input hook does
 *   not let a blocked address in (accept ends one base chain only) and is
 *   not reported; a foreign redirect of a guarded port to an unguarded one
 *   before rcguard's chain does let it in, and is.
 *
 * Documentation addresses, in namespaces this test creates; skips without
 * root, fails under CI=true.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa, type ResultPromise} from 'execa'
import {connect as reach, linkPair, listen, sh} from '../helpers/packets.js'
import {cli, netns, requireRoot, setup, stderrLines, STACK, type CliResult} from '../helpers/env.js'

const SERVER_4 = '192.0.2.1'
const ATTACKER_4 = '192.0.2.66'
const OTHER_4 = '192.0.2.77'
const SERVER_6 = '2001:db8:5::1'
const ATTACKER_6 = '2001:db8:5::66'
const OTHER_6 = '2001:db8:5::77'
/** Guarded: a plain listener on 443, an echo server on 8443 (for connections kept open). */
const WEB = 443
const ECHO = 8443
const SSH = 22

type Ns = Awaited<ReturnType<typeof netns>>
type Backend = 'iptables' | 'ipset' | 'nftables'

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** An echo server on `port` in namespace ns (IPv4 and IPv6), for two minutes at most. */
function echo(t: {after: (fn: () => void) => void}, ns: string, port: number): void {
  const script = `require('node:net').createServer((s) => { s.write('hi\\n'); s.on('data', (d) => s.write(d)).on('error', () => {}) }).listen(${port}, '::'); setTimeout(() => process.exit(0), 120000)`
  const p = execa('ip', ['netns', 'exec', ns, 'node', '-e', script], {reject: false})
  t.after(() => {
    p.kill()
  })
}

/**
 * One TCP connection kept open from `local`: each ping() sends a line over
 * it and tells whether the echo came back ('reply') within 1.5 s.
 */
async function session(t: {after: (fn: () => void) => void}, ns: string, host: string, port: number, local: string): Promise<{ping: () => Promise<string>}> {
  const script = `
const net = require('node:net');
const rl = require('node:readline').createInterface({input: process.stdin});
const s = net.connect({host: ${JSON.stringify(host)}, port: ${port}, localAddress: ${JSON.stringify(local)}});
s.on('error', () => {});
let pending = null;
s.on('data', () => { if (pending) { clearTimeout(pending); pending = null; console.log('reply'); } });
s.on('connect', () => console.log('connected'));
rl.on('line', () => {
  s.write('ping\\n');
  pending = setTimeout(() => { pending = null; console.log('timeout'); }, 1500);
});
`
  const child: ResultPromise = execa('ip', ['netns', 'exec', ns, 'node', '-e', script], {reject: false, stdin: 'pipe', stdout: 'pipe', buffer: false})
  t.after(() => {
    child.kill()
  })
  const lines: string[] = []
  child.stdout?.on('data', (d: Buffer) => lines.push(...String(d).split('\n').filter((l) => l !== '')))
  const next = async (): Promise<string> => {
    for (let i = 0; i < 100 && lines.length === 0; i++) await wait(50)
    return lines.shift() ?? 'no answer'
  }
  assert.equal(await next(), 'connected')
  return {
    ping: async () => {
      child.stdin?.write('\n')
      return next()
    },
  }
}

interface Pair {
  server: Ns
  client: Ns
  connect: (host: string, port: number, local: string) => Promise<string>
}

/** A server and a client namespace joined by a veth pair; listeners on 443, 22 and an echo server on 8443. */
async function pair(t: TestContext): Promise<Pair> {
  const server = await netns(t)
  const client = await netns(t)
  const veth = `rcs${server.name.slice(-6)}`
  await linkPair(veth, {ns: server.name, v4: SERVER_4, v6: SERVER_6}, {ns: client.name, v4: [ATTACKER_4, OTHER_4], v6: [ATTACKER_6, OTHER_6]})
  listen(t, server.name, [WEB, SSH])
  echo(t, server.name, ECHO)
  const connect = (host: string, port: number, local: string): Promise<string> => reach(client.name, host, port, local)
  for (let i = 0; i < 50 && ((await connect(SERVER_4, WEB, OTHER_4)) !== 'open' || (await connect(SERVER_4, ECHO, OTHER_4)) !== 'open'); i++) await wait(100)
  return {server, client, connect}
}

/** A config for `backend` guarding `ports`, and a runner of rcguard in the server namespace. */
function rcguard(t: Parameters<typeof setup>[0], p: Pair, backend: Backend, ports: number[] = [WEB, ECHO], env: Record<string, string> = {}) {
  const s = setup(t)
  const write = (list: number[]) => writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: list}], firewall: {backend}}))
  write(ports)
  return {
    s,
    ports: write,
    run: (...args: string[]): Promise<CliResult> => cli([...args, '--config', s.config], {netns: p.server.name, env}),
  }
}

function warnings(r: CliResult): string[] {
  assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, STACK)
  return stderrLines(r)
}

async function ok(ns: Ns, cmd: string, args: string[]): Promise<void> {
  const r = await ns.run(cmd, args)
  assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`)
}

for (const backend of ['iptables', 'ipset'] as const) {
  test(`${backend}: an ACCEPT for 443 inserted above rcguard's rule lets a blocked address in; every run warns naming it, --verbose says what to do, and doing it closes the hole`, async (t) => {
    if (!requireRoot(t)) return
    const p = await pair(t)
    const g = rcguard(t, p, backend)
    const b = await g.run('block', ATTACKER_4, ATTACKER_6)
    assert.equal(b.exitCode, 0, b.stderr)
    assert.deepEqual(warnings(b), [], 'nothing shadows rcguard yet')
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout', 'blocked')

    // A firewall script, run after rcguard, inserts its rule at the top.
    await ok(p.server, 'iptables', ['-w', '-I', 'INPUT', '1', '-p', 'tcp', '--dport', String(WEB), '-j', 'ACCEPT'])
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'open', 'the accept above rcguard lets the blocked address in on 443')
    assert.equal(await p.connect(SERVER_4, ECHO, ATTACKER_4), 'timeout', 'still blocked on the port the accept does not cover')
    assert.equal(await p.connect(SERVER_6, WEB, ATTACKER_6), 'timeout', 'IPv6 is not shadowed')

    const expected = new RegExp(
      `^rcguard: warning: IPv4 \\(iptables\\): INPUT rule 1 "-A INPUT -p tcp -m tcp --dport ${WEB} -j ACCEPT" accepts tcp port ${WEB} before rcguard's rules for master: blocked addresses get through \\(rcguard hacks --verbose says what to do\\)$`,
    )
    // Every run, not once: cron mails it every time until it is fixed.
    for (let i = 0; i < 2; i++) {
      const h = await g.run('hacks')
      assert.equal(h.exitCode, 0, 'a shadowed rule is a warning, not a failed run')
      assert.equal(h.stdout, '', 'nothing changed: nothing on stdout')
      const w = warnings(h)
      assert.equal(w.length, 1, h.stderr)
      assert.match(w[0] ?? '', expected)
    }

    const mark = `-m comment --comment "managed by rcguard"`
    const ours = backend === 'iptables' ? `-A INPUT -p tcp -m multiport --dports ${WEB},${ECHO} ${mark} -j rcguard-master` : `-A INPUT -p tcp -m multiport --dports ${WEB},${ECHO} -m set --match-set rcguard-master-4 src ${mark} -j DROP`
    const v = await g.run('hacks', '--verbose')
    assert.equal(v.exitCode, 0, v.stderr)
    assert.match(warnings(v)[0] ?? '', expected)
    assert.ok(v.stdout.includes(`firewall: shadowed: IPv4 (iptables): INPUT rule 2 "${ours}" (for master) comes after INPUT rule 1 "-A INPUT -p tcp -m tcp --dport ${WEB} -j ACCEPT", which accepts tcp port ${WEB} first`), v.stdout)
    const del = `iptables -D ${ours.slice(3)}`
    assert.ok(v.stdout.includes(`firewall: what to do: put rcguard's rule first again: "${del}", then "rcguard hacks"`), v.stdout)
    assert.doesNotMatch(v.stdout, /firewall already as wanted/)
    assert.match(v.stdout, /^firewall rules as wanted, nothing applied, but rules of others let packets past rcguard's: the blocks do not hold \(see the warnings\)$/m)

    // A block by hand says so too.
    const more = await g.run('block', '192.0.2.99')
    assert.equal(more.exitCode, 0, more.stderr)
    assert.match(warnings(more)[0] ?? '', expected)
    assert.match(more.stdout, /^firewall updated, but rules of others let packets past rcguard's \(see the warnings\)$/m)

    // Doing what it says: rcguard's rule comes back at the top, the blocked address is out again, no warning.
    // As an admin pastes it into a shell (the mark's comment is quoted).
    await ok(p.server, 'sh', ['-c', del.replace(/^(\S+) /, '$1 -w ')])
    const fixed = await g.run('hacks')
    assert.equal(fixed.exitCode, 0, fixed.stderr)
    assert.deepEqual(warnings(fixed), [])
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout', 'blocked again')
    assert.equal(await p.connect(SERVER_4, WEB, OTHER_4), 'open', 'everyone else still gets in')
  })

  test(`${backend}: IPv6: an ip6tables ACCEPT above rcguard's rule is named as IPv6's; the IPv4 rules stay quiet`, async (t) => {
    if (!requireRoot(t)) return
    const p = await pair(t)
    const g = rcguard(t, p, backend)
    assert.equal((await g.run('block', ATTACKER_4, ATTACKER_6)).exitCode, 0)
    await ok(p.server, 'ip6tables', ['-w', '-I', 'INPUT', '1', '-i', `rcs${p.server.name.slice(-6)}s`, '-j', 'ACCEPT'])
    assert.equal(await p.connect(SERVER_6, WEB, ATTACKER_6), 'open', 'the interface accept lets the blocked IPv6 address in')
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout')
    const h = await g.run('hacks')
    assert.equal(h.exitCode, 0, h.stderr)
    const w = warnings(h)
    assert.equal(w.length, 1, h.stderr)
    assert.match(w[0] ?? '', new RegExp(`^rcguard: warning: IPv6 \\(ip6tables\\): INPUT rule 1 "-A INPUT -i rcs${p.server.name.slice(-6)}s -j ACCEPT" accepts tcp ports ${WEB}, ${ECHO} before rcguard's rules for master: blocked addresses get through`))
    const v = await g.run('hacks', '--verbose')
    assert.match(v.stdout, /firewall: what to do: put rcguard's rule first again: "ip6tables -D INPUT /)
  })

  test(`${backend}: accepts that cannot reach a blocked address's packets to a guarded port warn nothing; an accept for a source network warns only while a blocked address is in it`, async (t) => {
    if (!requireRoot(t)) return
    const p = await pair(t)
    const g = rcguard(t, p, backend)
    assert.equal((await g.run('block', ATTACKER_4, ATTACKER_6)).exitCode, 0)
    for (const rule of [
      ['-p', 'tcp', '--dport', String(SSH), '-j', 'ACCEPT'],
      ['-i', 'lo', '-j', 'ACCEPT'],
      ['-p', 'udp', '-j', 'ACCEPT'],
      ['-p', 'tcp', '-m', 'multiport', '--dports', '80,8080', '-j', 'ACCEPT'],
      ['-s', '198.51.100.0/24', '-j', 'ACCEPT'],
    ]) {
      await ok(p.server, 'iptables', ['-w', '-I', 'INPUT', '1', ...rule])
    }
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout', 'still blocked on 443')
    assert.equal(await p.connect(SERVER_4, ECHO, ATTACKER_4), 'timeout', 'still blocked on 8443')
    assert.equal(await p.connect(SERVER_4, SSH, ATTACKER_4), 'open', 'ssh is not guarded')
    const h = await g.run('hacks')
    assert.equal(h.exitCode, 0, h.stderr)
    assert.deepEqual(warnings(h), [], 'nothing that matters is shadowed')
    const v = await g.run('hacks', '--verbose')
    assert.deepEqual(warnings(v), [])
    assert.match(v.stdout, /^firewall already as wanted: nothing applied$/m)
    // The source network's accept is told in --verbose: it would shadow a block there.
    assert.ok(
      v.stdout.includes(`firewall: IPv4 (iptables): INPUT rule 1 "-A INPUT -s 198.51.100.0/24 -j ACCEPT" accepts tcp ports ${WEB}, ${ECHO} from 198.51.100.0/24 before rcguard's rules for master: no blocked address is there now, but one blocked later would get through`),
      v.stdout,
    )
    assert.doesNotMatch(v.stdout, /--dport 22|-i lo|-p udp|80,8080/, 'the others are not even notes')

    // An accept for a network holding the blocked address: it gets in, and that is a warning naming it.
    await ok(p.server, 'iptables', ['-w', '-I', 'INPUT', '1', '-s', '192.0.2.64/30', '-p', 'tcp', '-j', 'ACCEPT'])
    assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'open')
    const w = warnings(await g.run('hacks'))
    assert.equal(w.length, 1, w.join('\n'))
    assert.match(
      w[0] ?? '',
      new RegExp(`^rcguard: warning: IPv4 \\(iptables\\): INPUT rule 1 "-A INPUT -s 192\\.0\\.2\\.64/30 -p tcp -j ACCEPT" accepts tcp ports ${WEB}, ${ECHO} from 192\\.0\\.2\\.64/30 before rcguard's rules for master: 1 blocked network\\(s\\) there get through \\(192\\.0\\.2\\.66\\)`),
    )
  })
}

test("iptables: an ESTABLISHED accept above rcguard's rule keeps a blocked address's open connection alive, and is a warning; without it rcguard cuts the connection", async (t) => {
  if (!requireRoot(t)) return
  const p = await pair(t)
  const g = rcguard(t, p, 'iptables')
  assert.equal((await g.run('hacks')).exitCode, 0)

  // rcguard first: a connection open before the block is cut by it.
  const first = await session(t, p.client.name, SERVER_4, ECHO, ATTACKER_4)
  assert.equal(await first.ping(), 'reply')
  assert.equal((await g.run('block', ATTACKER_4)).exitCode, 0)
  assert.equal(await first.ping(), 'timeout', 'rcguard drops every packet of a blocked address, open connections too')
  assert.equal((await g.run('unblock', ATTACKER_4)).exitCode, 0)

  // A connection-tracking accept above rcguard's rule.
  await ok(p.server, 'iptables', ['-w', '-I', 'INPUT', '1', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'])
  const kept = await session(t, p.client.name, SERVER_4, ECHO, ATTACKER_4)
  assert.equal(await kept.ping(), 'reply')
  const b = await g.run('block', ATTACKER_4)
  assert.equal(b.exitCode, 0, b.stderr)
  assert.equal(await kept.ping(), 'reply', 'the open connection goes on past the block')
  assert.equal(await p.connect(SERVER_4, ECHO, ATTACKER_4), 'timeout', 'a new connection is blocked')
  const w = warnings(await g.run('hacks'))
  assert.equal(w.length, 1, w.join('\n'))
  assert.match(
    w[0] ?? '',
    new RegExp(`^rcguard: warning: IPv4 \\(iptables\\): INPUT rule 1 "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" accepts packets of connections already open \\(conntrack ESTABLISHED/RELATED\\) on tcp ports ${WEB}, ${ECHO} before rcguard's rules for master: a blocked address keeps the connections it has open`),
  )
})

/** A directory whose iptables tools are the legacy ones, first on PATH. */
function legacyPath(t: {after: (fn: () => void) => void}): string {
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-legacy-'))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  for (const v of ['', '6']) {
    for (const tool of ['', '-save', '-restore']) symlinkSync(`/usr/sbin/ip${v}tables-legacy${tool}`, join(dir, `ip${v}tables${tool}`))
  }
  return `${dir}:${process.env.PATH ?? ''}`
}

test('iptables-legacy: an ACCEPT above rcguard\'s legacy rule is named; a legacy ACCEPT does not bypass rcguard\'s iptables-nft rule and is not named', async (t) => {
  if (!requireRoot(t)) return
  const p = await pair(t)
  const PATH = legacyPath(t)

  // rcguard on the legacy tools, the accept in legacy INPUT.
  const legacy = rcguard(t, p, 'iptables', [WEB, ECHO], {PATH})
  assert.equal((await legacy.run('block', ATTACKER_4)).exitCode, 0)
  assert.match((await p.server.run('iptables-legacy-save', ['-t', 'filter'])).stdout, /-j rcguard-master/)
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout')
  await ok(p.server, 'iptables-legacy', ['-w', '-I', 'INPUT', '1', '-p', 'tcp', '--dport', String(WEB), '-j', 'ACCEPT'])
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'open')
  const w = warnings(await legacy.run('hacks'))
  assert.equal(w.length, 1, w.join('\n'))
  assert.match(w[0] ?? '', new RegExp(`^rcguard: warning: IPv4 \\(iptables\\): INPUT rule 1 "-A INPUT -p tcp -m tcp --dport ${WEB} -j ACCEPT" accepts tcp port ${WEB}`))
  assert.equal((await legacy.run('flush', '--yes')).exitCode, 0)

  // rcguard on iptables-nft, the same legacy accept: the hooks are separate, the block holds.
  const nft = rcguard(t, p, 'iptables')
  assert.equal((await nft.run('block', ATTACKER_4)).exitCode, 0)
  assert.match((await p.server.run('iptables-legacy-save', ['-t', 'filter'])).stdout, /--dport 443 -j ACCEPT/)
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout', "a legacy ACCEPT ends only legacy's own chain")
  assert.deepEqual(warnings(await nft.run('hacks')), [])
})

test('DOCKER-USER: a RETURN above rcguard\'s rule, and an ACCEPT in FORWARD above the jump to DOCKER-USER, let a blocked address through to the server behind; both are named', async (t) => {
  if (!requireRoot(t)) return
  // client 192.0.2.66 -- router (192.0.2.1 | 198.51.100.1) -- server 198.51.100.2, rcguard on the router.
  const router = await netns(t)
  const client = await netns(t)
  const server = await netns(t)
  const tag = router.name.slice(-6)
  await execa('ip', ['link', 'add', `rca${tag}`, 'netns', router.name, 'type', 'veth', 'peer', 'name', `rcc${tag}`, 'netns', client.name])
  await execa('ip', ['link', 'add', `rcb${tag}`, 'netns', router.name, 'type', 'veth', 'peer', 'name', `rcs${tag}`, 'netns', server.name])
  for (const [ns, args] of [
    [router, ['addr', 'add', '192.0.2.1/24', 'dev', `rca${tag}`]],
    [router, ['addr', 'add', '198.51.100.1/24', 'dev', `rcb${tag}`]],
    [router, ['link', 'set', `rca${tag}`, 'up']],
    [router, ['link', 'set', `rcb${tag}`, 'up']],
    [client, ['addr', 'add', `${ATTACKER_4}/24`, 'dev', `rcc${tag}`]],
    [client, ['addr', 'add', `${OTHER_4}/24`, 'dev', `rcc${tag}`]],
    [client, ['link', 'set', `rcc${tag}`, 'up']],
    [client, ['route', 'add', '198.51.100.0/24', 'via', '192.0.2.1']],
    [server, ['addr', 'add', '198.51.100.2/24', 'dev', `rcs${tag}`]],
    [server, ['link', 'set', `rcs${tag}`, 'up']],
    [server, ['link', 'set', 'lo', 'up']],
    [server, ['route', 'add', 'default', 'via', '198.51.100.1']],
  ] as const) {
    await sh(ns.name, ['ip', ...args])
  }
  await sh(router.name, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  // What Docker makes: the chain, jumped to first from FORWARD.
  await ok(router, 'iptables', ['-w', '-N', 'DOCKER-USER'])
  await ok(router, 'iptables', ['-w', '-A', 'FORWARD', '-j', 'DOCKER-USER'])
  listen(t, server.name, [WEB])
  const connect = (local: string) => reach(client.name, '198.51.100.2', WEB, local)
  for (let i = 0; i < 50 && (await connect(OTHER_4)) !== 'open'; i++) await wait(100)

  const s = setup(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [WEB]}], firewall: {backend: 'iptables', chains: ['DOCKER-USER']}}))
  const run = (...args: string[]) => cli([...args, '--config', s.config], {netns: router.name})
  assert.equal((await run('block', ATTACKER_4)).exitCode, 0)
  assert.equal(await connect(ATTACKER_4), 'timeout', 'blocked in DOCKER-USER')
  assert.equal(await connect(OTHER_4), 'open')

  await ok(router, 'iptables', ['-w', '-I', 'DOCKER-USER', '1', '-j', 'RETURN'])
  assert.equal(await connect(ATTACKER_4), 'open', 'RETURN goes back to FORWARD past rcguard\'s rule')
  let w = warnings(await run('hacks'))
  assert.equal(w.length, 1, w.join('\n'))
  assert.match(w[0] ?? '', /^rcguard: warning: IPv4 \(iptables\): DOCKER-USER rule 1 "-A DOCKER-USER -j RETURN" returns tcp port 443 \(the rest of FORWARD decides\) before rcguard's rules for master: blocked addresses get through/)
  await ok(router, 'iptables', ['-w', '-D', 'DOCKER-USER', '-j', 'RETURN'])
  assert.equal(await connect(ATTACKER_4), 'timeout')

  await ok(router, 'iptables', ['-w', '-I', 'FORWARD', '1', '-j', 'ACCEPT'])
  assert.equal(await connect(ATTACKER_4), 'open', 'FORWARD accepts before it jumps to DOCKER-USER')
  w = warnings(await run('hacks'))
  assert.equal(w.length, 1, w.join('\n'))
  assert.match(w[0] ?? '', /^rcguard: warning: IPv4 \(iptables\): FORWARD rule 1 "-A FORWARD -j ACCEPT" accepts tcp port 443 before rcguard's rules for master: blocked addresses get through/)
})

test('nftables: a foreign accept at an earlier priority does not let a blocked address in and is not named; a redirect of a guarded port to an unguarded one does, and is', async (t) => {
  if (!requireRoot(t)) return
  const p = await pair(t)
  const g = rcguard(t, p, 'nftables', [WEB])
  assert.equal((await g.run('block', ATTACKER_4, ATTACKER_6)).exitCode, 0)

  // Debian's own table, at a priority before rcguard's (-10), accepting everything.
  const script = `table inet filter {
  chain input {
    type filter hook input priority -100; policy accept;
    tcp dport ${WEB} accept
    accept
  }
}
`
  const f = await p.server.run('nft', ['-f', '-'], script)
  assert.equal(f.exitCode, 0, f.stderr)
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout', 'an accept ends only its own base chain')
  assert.equal(await p.connect(SERVER_6, WEB, ATTACKER_6), 'timeout')
  assert.equal(await p.connect(SERVER_4, WEB, OTHER_4), 'open')
  const quiet = await g.run('hacks', '--verbose')
  assert.equal(quiet.exitCode, 0, quiet.stderr)
  assert.deepEqual(warnings(quiet), [])
  assert.match(quiet.stdout, /^firewall already as wanted: nothing applied$/m)

  // A redirect of 443 to the service's real port, before rcguard's input chain.
  const nat = `table inet proxy {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport ${WEB} redirect to :${ECHO} comment "to the proxy"
  }
}
`
  const n = await p.server.run('nft', ['-f', '-'], nat)
  assert.equal(n.exitCode, 0, n.stderr)
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'open', 'rcguard sees port 8443, not 443')
  assert.equal(await p.connect(SERVER_6, WEB, ATTACKER_6), 'open')
  for (let i = 0; i < 2; i++) {
    const h = await g.run('hacks')
    assert.equal(h.exitCode, 0, h.stderr)
    const w = warnings(h)
    assert.equal(w.length, 1, h.stderr)
    assert.match(
      w[0] ?? '',
      /^rcguard: warning: IPv4 and IPv6 \(nftables\): chain pre in table inet proxy \(hook prerouting priority -100\), handle \d+ "redirect to :8443 \(comment: to the proxy\)" changes the destination of tcp port 443 to port 8443 before rcguard's chain input \(hook input priority -10\) sees the packets \(instance master\): blocked addresses get through/,
    )
  }
  const v = await g.run('hacks', '--verbose')
  assert.match(v.stdout, /^firewall: what to do: rcguard matches the port a packet has when its chain sees it: add port 8443 to instance master's ports/m)
  assert.doesNotMatch(v.stdout, /firewall already as wanted/)

  // Doing it: 8443 guarded too, the blocked address is out, nothing to warn.
  g.ports([WEB, ECHO])
  const fixed = await g.run('hacks')
  assert.equal(fixed.exitCode, 0, fixed.stderr)
  assert.deepEqual(warnings(fixed), [])
  assert.equal(await p.connect(SERVER_4, WEB, ATTACKER_4), 'timeout')
  assert.equal(await p.connect(SERVER_6, WEB, ATTACKER_6), 'timeout')
  assert.equal(await p.connect(SERVER_4, WEB, OTHER_4), 'open')
})
