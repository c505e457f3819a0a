/**
 * `rcguard watch` against the real kernel (issue 12): a client that tries
 * one password a second, its attempts logged as Roundcube logs them, is
 * refused at the firewall within maxAttempts + 2 attempts, while another
 * address still connects; then its block ends on time (block --minutes 1)
 * and it connects again. For every backend, in namespaces of the test's own.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {connect as reach, linkPair, listen} from '../helpers/packets.js'
import {appendLines, cli, f2, netns, requireRoot, setup, type Setup} from '../helpers/env.js'
import {sleep, Watcher} from '../helpers/watcher.js'

const SERVER_4 = '192.0.2.1'
const ATTACKER_4 = '192.0.2.66'
const OTHER_4 = '192.0.2.77'
const SERVER_6 = '2001:db8:7::1'
const GUARDED = 8443

/** A server namespace running watch over `backend`, a listener on the guarded port, and a client namespace with two addresses. */
async function guarded(t: TestContext, backend: 'iptables' | 'ipset' | 'nftables'): Promise<{s: Setup; w: Watcher; server: string; connect: (local: string) => Promise<string>}> {
  const server = await netns(t)
  const client = await netns(t)
  await linkPair(`rcw${server.name.slice(-6)}`, {ns: server.name, v4: SERVER_4, v6: SERVER_6}, {ns: client.name, v4: [ATTACKER_4, OTHER_4], v6: []})
  listen(t, server.name, [GUARDED])
  const connect = (local: string): Promise<string> => reach(client.name, SERVER_4, GUARDED, local)
  for (let i = 0; i < 50 && (await connect(OTHER_4)) !== 'open'; i++) await sleep(100)
  const s = setup(t)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [GUARDED]}], firewall: {backend}}))
  const w = new Watcher(s.config, {netns: server.name})
  t.after(async () => {
    if (w.alive) await w.stop()
  })
  await w.waitFor(/^rcguard watch: following/)
  return {s, w, server: server.name, connect}
}

for (const backend of ['iptables', 'ipset', 'nftables'] as const) {
  test(`${backend}: watch refuses a one-attempt-a-second client within maxAttempts + 2 attempts, others connect`, async (t) => {
    if (!requireRoot(t)) return
    const {s, w, connect} = await guarded(t, backend)
    let attempts = 0
    // Each attempt: a connection, then Roundcube's line for its failed login.
    while (attempts < 12 && (await connect(ATTACKER_4)) === 'open') {
      appendLines(s.log, [f2(new Date(), ATTACKER_4)])
      attempts++
      await sleep(1_000)
    }
    assert.ok(attempts >= 6, `refused after only ${attempts} attempts`)
    assert.ok(attempts <= 6 + 2, `the attacker got ${attempts} attempts in (maxAttempts 6)`)
    assert.equal(await connect(ATTACKER_4), 'timeout', 'the attacker is dropped')
    assert.equal(await connect(OTHER_4), 'open', 'another address still connects')
    assert.equal(await w.stop(), 0, w.err.join('\n'))
    assert.deepEqual(w.err, [])
  })
}

test('nftables: a block made by hand for one minute ends on time under watch, and the address connects again', async (t) => {
  if (!requireRoot(t)) return
  const {s, w, connect, server} = await guarded(t, 'nftables')
  const b = await cli(['block', ATTACKER_4, '--minutes', '1', '--config', s.config], {netns: server})
  assert.equal(b.exitCode, 0, b.stderr)
  const ends = Date.now() + 60_000
  assert.equal(await connect(ATTACKER_4), 'timeout')
  await w.waitFor(new RegExp(`^unblocked ${ATTACKER_4.replaceAll('.', '\\.')} on master`), 80_000)
  const late = Date.now() - ends
  assert.ok(late < 5_000, `the block ended ${late} ms late`)
  assert.equal(await connect(ATTACKER_4), 'open')
  assert.equal(await w.stop(), 0, w.err.join('\n'))
})
