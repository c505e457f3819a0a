/**
 * The Redis harness of the cluster tests (test/helpers/redis.ts) checked on
 * its own, so that a failing cluster test is never a harness bug: a server
 * starts on its unix socket, SET/GET work through redis-cli, stop() then
 * start() keeps the data, restartEmpty() loses it, kill() is a crash that
 * loses it too, stop() leaves no process and no socket behind, a password is
 * required when set (and redis-cli is given it without putting it on its
 * command line), and, as root, the socket answers from inside a network
 * namespace. Skips without redis-server (fails under CI=true).
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {execa} from 'execa'
import {netns, requireRoot} from '../helpers/env.js'
import {requireRedis, startRedis} from '../helpers/redis.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('harness: start, SET/GET, stop+start keeps the data, restartEmpty loses it, kill is a crash, stop leaves no process', async (t) => {
  if (!requireRedis(t)) return
  const redis = await startRedis(t)
  assert.match(redis.url, /^unix:\/\/\/.*\/redis\.sock$/)
  assert.ok(existsSync(redis.socket))

  assert.equal((await redis.cli(['set', 'rcguard:k', 'v1'])).stdout.trim(), 'OK')
  assert.equal((await redis.cli(['get', 'rcguard:k'])).stdout.trim(), 'v1')
  await redis.cli(['hset', 'rcguard:h', 'ip', '203.0.113.66'])
  assert.deepEqual(await redis.keys(), ['rcguard:h', 'rcguard:k'])
  assert.match((await redis.dump())['rcguard:h'] ?? '', /^\(hash\) ip\n203\.0\.113\.66/)

  const pid = redis.pid()
  assert.ok(pid !== undefined && alive(pid))
  await redis.stop()
  assert.equal(redis.pid(), undefined)
  assert.ok(!alive(pid), 'stop() leaves no process')
  assert.ok(!existsSync(redis.socket), 'stop() removes the socket file')
  assert.notEqual((await redis.cli(['ping'])).stdout.trim(), 'PONG', 'nothing answers while stopped')

  await redis.start()
  assert.equal((await redis.cli(['get', 'rcguard:k'])).stdout.trim(), 'v1', 'stop() then start() keeps the data')

  await redis.restartEmpty()
  assert.equal((await redis.cli(['dbsize'])).stdout.trim(), '0', 'restartEmpty() loses every key')
  assert.equal((await redis.cli(['get', 'rcguard:k'])).stdout.trim(), '')

  await redis.cli(['set', 'rcguard:k', 'v2'])
  const pid2 = redis.pid()
  assert.ok(pid2 !== undefined && pid2 !== pid)
  await redis.kill()
  assert.ok(!alive(pid2), 'kill() leaves no process')
  assert.ok(existsSync(redis.socket), 'a crash leaves the socket file behind')
  await redis.start()
  assert.equal((await redis.cli(['dbsize'])).stdout.trim(), '0', 'after kill() the server comes back empty')

  redis.pause()
  const t0 = performance.now()
  const hung = await redis.cli(['ping'], 1_000)
  assert.notEqual(hung.stdout.trim(), 'PONG', 'a paused server does not answer')
  assert.ok(performance.now() - t0 >= 900)
  redis.resume()
  assert.equal((await redis.cli(['ping'])).stdout.trim(), 'PONG')

  const last = redis.pid()
  await redis.stop()
  assert.ok(last !== undefined && !alive(last))
})

test('harness: with --requirepass, a client without the password is refused, redis-cli is given it', async (t) => {
  if (!requireRedis(t)) return
  const password = 'harness-pw-7f3a9c'
  const redis = await startRedis(t, {password})
  assert.equal(redis.url, `unix://${redis.socket}?password=${password}`)
  assert.equal((await redis.cli(['ping'])).stdout.trim(), 'PONG')
  const bare = await execa('redis-cli', ['-s', redis.socket, 'ping'], {reject: false, env: {REDISCLI_AUTH: ''}})
  assert.match(String(bare.stdout) + String(bare.stderr), /NOAUTH/)
})

test('harness: the socket answers from inside a network namespace', async (t) => {
  if (!requireRedis(t) || !requireRoot(t)) return
  const redis = await startRedis(t)
  const ns = await netns(t)
  await redis.cli(['set', 'rcguard:from-host', 'yes'])
  const r = await ns.run('redis-cli', ['-s', redis.socket, 'get', 'rcguard:from-host'])
  assert.equal(r.stdout.trim(), 'yes', r.stderr)
})
