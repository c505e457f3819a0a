/**
 * rediss://: a real redis-server with TLS only (Debian's is built with it), its
 * certificate made by openssl for 127.0.0.1 and signed by a CA of the test's
 * own. With `cluster.ca` naming that CA, the node pushes and blocks over TLS;
 * without it, the system's CAs refuse the certificate: one warning, the run
 * goes on alone, exit 0. Skips without root, redis-server or openssl (fails
 * under CI=true).
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execa, execaSync} from 'execa'
import {appendLines, at, cli, f2, requireRoot, tempDir} from '../helpers/env.js'
import {freePort, requireRedis} from '../helpers/redis.js'

async function sh(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await execa(cmd, args, {cwd, reject: false})
  assert.equal(r.exitCode, 0, `${cmd} ${args.join(' ')}: ${String(r.stderr)}`)
}

/** A CA and a server certificate for 127.0.0.1 signed by it, in dir. */
async function certificates(dir: string): Promise<void> {
  await sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=rcguard test CA'], dir)
  await sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir)
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
  await sh('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext'], dir)
}

function requireOpenssl(t: TestContext): boolean {
  if (execaSync('sh', ['-c', 'command -v openssl'], {reject: false}).exitCode === 0) return true
  const reason = 'openssl is not installed (apt-get install openssl)'
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`)
  t.skip(reason)
  return false
}

test('rediss:// with cluster.ca: the node pushes and blocks over TLS; without the CA, the certificate is refused: one warning, the run alone', async (t) => {
  if (!requireRoot(t) || !requireRedis(t) || !requireOpenssl(t)) return
  const dir = tempDir(t, 'rcguard-tls-')
  await certificates(dir)
  const port = await freePort()
  const server = execa('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', 'server.pem', '--tls-key-file', 'server.key', '--tls-ca-cert-file', 'ca.pem', '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--requirepass', 'tls-Secret-7'], {cwd: dir, reject: false})
  t.after(async () => {
    server.kill('SIGKILL')
    await server
  })
  const rcli = (args: string[]) => execa('redis-cli', ['--tls', '--cacert', join(dir, 'ca.pem'), '-h', '127.0.0.1', '-p', String(port), ...args], {reject: false, env: {REDISCLI_AUTH: 'tls-Secret-7'}})
  for (let i = 0; i < 50 && String((await rcli(['ping'])).stdout).trim() !== 'PONG'; i++) await new Promise((r) => setTimeout(r, 100))
  const node = join(dir, 'node')
  mkdirSync(node, {mode: 0o700})
  const log = join(node, 'userlogins.log')
  appendLines(log, Array.from({length: 6}, (_, i) => f2(at(0, i * 10), '203.0.113.120', 'x')))
  const config = (ca: boolean): string => {
    const path = join(node, ca ? 'with-ca.json' : 'without-ca.json')
    const cluster = {redis: `rediss://:tls-Secret-7@127.0.0.1:${port}/0`, node: 'tls1', timeoutSeconds: 2, ...(ca ? {ca: join(dir, 'ca.pem')} : {})}
    writeFileSync(path, JSON.stringify({database: join(node, `${ca ? 'a' : 'b'}.json`), instances: [{name: 'master', logs: [log], ports: [443]}], firewall: {backend: 'none'}, cluster}), {mode: 0o600})
    return path
  }
  const env = {env: {RCGUARD_NOW: at(2, 0).toISOString()}}
  const refused = await cli(['hacks', '--config', config(false)], env)
  assert.equal(refused.exitCode, 0, refused.stderr)
  assert.match(refused.stderr, /^rcguard: warning: cluster: Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 \(cluster node tls1\): .*(certificate|self.signed).*: this run counted and blocked on this node alone/m)
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
  const ok = await cli(['hacks', '--config', config(true)], env)
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.equal(ok.stderr, '', 'with the CA, TLS works: no warning')
  assert.match(ok.stdout, /^blocked 203\.0\.113\.120 on master /m)
  assert.match(String((await rcli(['HGET', 'rcguard:b:master', '203.0.113.120'])).stdout), /"node":"tls1"/, 'the block is in Redis, over TLS')
  assert.doesNotMatch(refused.stdout + refused.stderr + ok.stdout + ok.stderr, /tls-Secret-7/)
})
