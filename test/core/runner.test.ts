import {test} from 'node:test'
import assert from 'node:assert/strict'
import {ExecaRunner, searchPath} from '../../src/core/firewall/runner.js'
import {FirewallError, ExitCode} from '../../src/core/errors.js'

test('a missing tool is one line naming it and the fix, with the firewall exit code', async () => {
  const runner = new ExecaRunner()
  await assert.rejects(runner.run('rcguard-no-such-tool', []), (err: unknown) => {
    assert.ok(err instanceof FirewallError)
    assert.equal(err.exitCode, ExitCode.FIREWALL)
    assert.match(err.message, /^rcguard-no-such-tool not found: install it or choose another firewall\.backend$/)
    return true
  })
})

test('a tool that hangs is stopped at the timeout and reported', async () => {
  const runner = new ExecaRunner(() => undefined, 300)
  await assert.rejects(runner.run('sleep', ['5']), /sleep did not finish within 0\.3 s and was stopped; the next run retries/)
})

test('commands run without a shell: arguments reach the tool as they are', async () => {
  const seen: string[] = []
  const runner = new ExecaRunner((line) => seen.push(line))
  const r = await runner.run('printf', ['%s|', '$(id)', 'a b', ';ls'])
  assert.equal(r.stdout, '$(id)|a b|;ls|')
  assert.deepEqual(seen, ['printf %s| $(id) a b ;ls'])
})

test("cron's PATH gains the sbin directories, in order, without duplicates", () => {
  assert.equal(searchPath('/usr/bin:/bin'), '/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin')
  assert.equal(searchPath('/usr/sbin:/usr/bin'), '/usr/sbin:/usr/bin:/usr/local/sbin:/sbin')
  assert.equal(searchPath(undefined), '/usr/local/sbin:/usr/sbin:/sbin')
})
