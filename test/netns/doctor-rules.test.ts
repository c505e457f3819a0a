/**
 * rcguard doctor on the live firewall, against the real tools of each
 * backend in a network namespace of its own: before the first run it says
 * the rules are not set up yet (rules-missing), after `rcguard block` it says
 * nothing of them, when someone removes them it says so again, and an ACCEPT
 * inserted above rcguard's rule (iptables, ipset) is an error naming it
 * (rules-shadowed), while the kernel's listing shows doctor changed nothing;
 * the real kernel supports each backend (no kernel-support), and refuses it to
 * root in a user namespace of its own (kernel-support, and no rules finding).
 * Skips without root (and fails under CI=true), or without php and
 * Roundcube's configuration (test/doctor/fixture.ts).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {BIN, cli, netns, requireRoot} from '../helpers/env.js'
import {cleanGuard, rcFixture, requireRoundcube} from '../doctor/fixture.js'

type Finding = {id: string; severity: string; message: string}

const BACKENDS = [
  {backend: 'nftables', list: ['nft', ['list', 'ruleset']], remove: ['nft', ['delete', 'table', 'inet', 'rcguard']]},
  {backend: 'ipset', list: ['iptables-save', []], remove: ['iptables', ['-w', '-D', 'INPUT', '1']]},
  {backend: 'iptables', list: ['iptables-save', []], remove: ['iptables', ['-w', '-F', 'rcguard-master']]},
] as const

for (const b of BACKENDS) {
  test(`${b.backend}: doctor reads the live rules and changes nothing: not set up yet, in place, removed by someone${b.backend === 'nftables' ? '' : ', passed by an ACCEPT above them'}`, async (t) => {
    if (!requireRoot(t) || !requireRoundcube(t)) return
    const ns = await netns(t)
    const f = rcFixture(t)
    const config = cleanGuard(f, {}, {firewall: {backend: b.backend}})
    const listing = async (): Promise<string> => (await ns.run(b.list[0], [...b.list[1]])).stdout.replace(/^#.*$/gm, '')
    const rules = async (): Promise<Finding[]> => {
      const before = await listing()
      // Not RCGUARD_DOCTOR_ROOT: the live rules are looked at only on the machine itself.
      const r = await cli(['doctor', '--json', '--config', config, '--roundcube', f.rcDir], {netns: ns.name})
      assert.ok([0, 1, 2].includes(r.exitCode), `${r.stdout}${r.stderr}`)
      assert.equal(await listing(), before, 'doctor changed nothing in the firewall')
      return (JSON.parse(r.stdout) as {findings: Finding[]}).findings.filter((x) => x.id.startsWith('rules-'))
    }

    const first = await cli(['doctor', '--json', '--config', config, '--roundcube', f.rcDir], {netns: ns.name})
    assert.deepEqual((JSON.parse(first.stdout) as {findings: Finding[]}).findings.filter((x) => x.id === 'kernel-support'), [], 'the kernel supports every backend here')
    const fresh = await rules()
    assert.deepEqual(fresh.map((x) => `${x.severity}:${x.id}`), ['warning:rules-missing'])
    assert.match(fresh[0]?.message ?? '', /^rcguard has not set its rules up yet: /)

    const blocked = await cli(['block', '203.0.113.9', '--config', config], {netns: ns.name})
    assert.equal(blocked.exitCode, 0, blocked.stderr)
    assert.deepEqual(await rules(), [], 'in place and reached: nothing to say')

    const removed = await ns.run(b.remove[0], [...b.remove[1]])
    assert.equal(removed.exitCode, 0, removed.stderr)
    const gone = await rules()
    assert.deepEqual(gone.map((x) => `${x.severity}:${x.id}`), ['warning:rules-missing'])
    assert.match(gone[0]?.message ?? '', new RegExp(`^rcguard's ${b.backend} rules are not as the database wants them: `))

    if (b.backend === 'nftables') return
    // Put back by a run, then passed by someone's ACCEPT at the top of INPUT.
    assert.equal((await cli(['hacks', '--config', config], {netns: ns.name})).exitCode, 0)
    assert.deepEqual(await rules(), [])
    const accept = await ns.run('iptables', ['-w', '-I', 'INPUT', '1', '-p', 'tcp', '--dport', '443', '-j', 'ACCEPT'])
    assert.equal(accept.exitCode, 0, accept.stderr)
    const shadowed = await rules()
    assert.deepEqual(shadowed.map((x) => `${x.severity}:${x.id}`), ['error:rules-shadowed'])
    assert.match(shadowed[0]?.message ?? '', /INPUT rule 1 "-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT" accepts tcp port 443 before rcguard's rules for master/)
  })
}

for (const backend of ['nftables', 'ipset', 'iptables']) {
  test(`${backend}: a kernel that refuses the backend (root in a user namespace without the network's NET_ADMIN, as in a container) is one kernel-support error, and no rules finding`, async (t) => {
    if (!requireRoot(t) || !requireRoundcube(t)) return
    const ns = await netns(t)
    const f = rcFixture(t)
    const config = cleanGuard(f, {}, {firewall: {backend}})
    // uid 0 in a user namespace of its own: root to rcguard, but the namespace's network belongs to the parent's,
    // so the kernel refuses every netfilter request (EPERM), as in a container without NET_ADMIN.
    const r = await ns.run('unshare', ['--user', '--map-root-user', 'env', 'NO_COLOR=1', 'node', BIN, 'doctor', '--json', '--config', config, '--roundcube', f.rcDir])
    assert.equal(r.exitCode, 2, `${r.stdout}${r.stderr}`)
    const found = (JSON.parse(r.stdout) as {findings: Finding[]}).findings
    const kernel = found.filter((x) => x.id === 'kernel-support')
    assert.ok(kernel.length >= 1 && kernel.every((x) => x.severity === 'error'), JSON.stringify(found))
    assert.match(kernel[0]?.message ?? '', new RegExp(`^the kernel refuses what the ${backend} backend makes: \\S+ .* says ".*(not permitted|Permission denied).*"`, 'i'))
    assert.match((kernel[0] as {fix?: string} | undefined)?.fix ?? '', /CAP_NET_ADMIN/)
    assert.deepEqual(found.filter((x) => x.id.startsWith('rules-')), [], 'a kernel that refuses cannot list the rules either: one finding says it')
  })
}
