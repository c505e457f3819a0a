/**
 * Lock-out safety against the real firewall: forged log lines that try to
 * get loopback, this host's addresses, a trusted proxy, a whitelisted network
 * or an innocent third party blocked never put them in a rule; only the
 * address that really sent the attempts is blocked.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {appendLines, cli, fileDate, netns, requireRoot, setup, stripSaveComments, T0} from '../helpers/env.js'

const at = (sec: number) => new Date(T0.getTime() + sec * 1000)

for (const backend of ['iptables', 'nftables'] as const) {
  test(`${backend}: forged lines never block loopback, the host, the proxy, the whitelist or a victim`, async (t) => {
    if (!requireRoot(t)) return
    const ns = await netns(t)
    // The namespace's own address, as a real host has one.
    for (const args of [
      ['link', 'add', 'rcga', 'type', 'veth', 'peer', 'name', 'rcgb'],
      ['addr', 'add', '192.0.2.200/24', 'dev', 'rcga'],
      ['link', 'set', 'rcga', 'up'],
    ]) {
      const r = await ns.run('ip', args)
      assert.equal(r.exitCode, 0, `ip ${args.join(' ')}: ${r.stderr}`)
    }
    const s = setup(t)
    writeFileSync(
      s.config,
      JSON.stringify({
        database: s.db,
        whitelist: ['198.51.100.0/24'],
        trustedProxies: ['192.0.2.10'],
        instances: [{name: 'master', logs: [s.log], ports: [443]}],
        firewall: {backend},
      }),
    )
    const lines: string[] = []
    let n = 0
    const line = (body: string) => {
      n++
      lines.push(`${fileDate(at(n))}: <f${String(n).padStart(7, '0')}> ${body}`)
    }
    for (let i = 0; i < 8; i++) {
      for (const ip of ['127.0.0.1', '::1', '192.0.2.200', '192.0.2.10', '198.51.100.5']) {
        line(`Failed login for root from ${ip} in session s${n}xxxxxxxx (error: 0)`)
      }
      // The attacker 203.0.113.66 names a victim in its user name and in X-Forwarded-For.
      line(`Failed login for v from 203.0.113.99 in session zz (error: 0) from 203.0.113.66 in session s${n}yyyyyyyy (error: 0)`)
      line(`Failed login for v from 203.0.113.66 (X-Forwarded-For: 203.0.113.98) in session s${n}zzzzzzzz (error: 0)`)
      // Behind the trusted proxy, a client forging X-Forwarded-For entries to its left cannot choose its address.
      line(`Failed login for v from 192.0.2.10 (X-Forwarded-For: 127.0.0.1, 198.51.100.7, 203.0.113.77) in session s${n}wwwwwwww (error: 0)`)
    }
    appendLines(s.log, lines)
    const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: {RCGUARD_NOW: at(n + 5).toISOString()}})
    assert.equal(r.exitCode, 0, r.stderr)
    const live =
      backend === 'iptables'
        ? `${stripSaveComments((await ns.run('iptables-save', ['-t', 'filter'])).stdout)}${stripSaveComments((await ns.run('ip6tables-save', ['-t', 'filter'])).stdout)}`
        : (await ns.run('nft', ['list', 'table', 'inet', 'rcguard'])).stdout
    for (const never of ['127.0.0.1', '::1', '192.0.2.200', '192.0.2.10', '198.51.100.5', '198.51.100.7', '203.0.113.99', '203.0.113.98']) {
      assert.ok(!live.includes(never), `${never} must never be in a rule:\n${live}`)
    }
    assert.ok(live.includes('203.0.113.66'), 'the real sender is blocked')
    assert.ok(live.includes('203.0.113.77'), 'the client behind the trusted proxy is blocked')
  })
}
