/**
 * Names that reach a firewall tool are checked when the configuration is
 * loaded: a prefix nft cannot read as a table name, instance names whose
 * nft set names would collide, are a configuration error (exit 3) naming the
 * key; what the tools can take (an instance name starting with a digit) is
 * mapped, and every configuration valid before stays valid.
 * test/netns/names.test.ts checks the same rules against the real tools.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {loadConfig, validateConfig} from '../../src/core/config/config.js'
import {ConfigError, ExitCode} from '../../src/core/errors.js'
import {NFT_KEYWORDS, firewallNameProblems, nftNameProblem, nftSetStem} from '../../src/core/firewall/names.js'
import {NftablesBackend} from '../../src/core/firewall/nftables.js'
import {tempDir} from '../helpers/env.js'

function config(firewall: Record<string, unknown>, names: string[] = ['master']): unknown {
  return {instances: names.map((name) => ({name, logs: ['/var/log/x.log'], ports: [443]})), firewall}
}

function refusal(raw: unknown): ConfigError {
  try {
    validateConfig(raw, 'rcguard.yml', '/')
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(err.exitCode, ExitCode.CONFIG)
    return err
  }
  assert.fail(`accepted: ${JSON.stringify(raw)}`)
}

test('a prefix that is a word of the nft language is refused for nftables and auto, naming firewall.prefix and why; where nft never sees it, it stays valid', () => {
  for (const backend of ['nftables', 'auto']) {
    for (const prefix of ['counter', 'log', 'table', 'ip', 'meta', 'tables', 'sets', 'vxlan']) {
      const err = refusal(config({backend, prefix}))
      assert.match(err.message, new RegExp(`^invalid configuration in rcguard\\.yml: firewall\\.prefix: "${prefix}" is a word of the nft language, which nft cannot read as a table name \\(firewall\\.backend is ${backend}\\): choose another prefix, e\\.g\\. rcguard$`))
    }
  }
  for (const backend of ['iptables', 'ipset', 'none']) {
    const c = validateConfig(config({backend, prefix: 'counter'}), 'rcguard.yml', '/')
    assert.equal(c.firewall.prefix, 'counter')
  }
})

test('configurations valid before stay valid: the default prefix, filter, instance names like master and webmail-2', async (t) => {
  const f = join(tempDir(t), 'c.yml')
  writeFileSync(f, '# empty\n')
  assert.equal((await loadConfig(f, true)).config.firewall.prefix, 'rcguard')
  for (const prefix of ['rcguard', 'filter', 'nat', 'input', 'Log', 'x', 'a1_b2c3d4e']) {
    for (const backend of ['nftables', 'auto', 'iptables']) {
      validateConfig(config({backend, prefix}, ['master', 'webmail-2', 'web_3', 'A']), 'rcguard.yml', '/')
    }
  }
  assert.deepEqual(firewallNameProblems({firewall: {backend: 'nftables', prefix: 'abcdefghij'}, instances: [{name: 'abcdefghijklmnop'}]}), [], 'the longest names fit every tool')
})

test('an instance name starting with a digit is valid: its nft sets get a "_" in front', () => {
  const c = validateConfig(config({backend: 'nftables'}, ['2nd', 'master', '3-a']), 'rcguard.yml', '/')
  assert.deepEqual(c.instances.map((i) => i.name), ['2nd', 'master', '3-a'])
  assert.equal(nftSetStem('2nd'), '_2nd')
  assert.equal(nftSetStem('webmail-2'), 'webmail_2')
  assert.equal(nftSetStem('-x'), '_x')
  const fw = new NftablesBackend({prefix: 'rcguard', runner: {run: async () => ({stdout: '', stderr: '', exitCode: 0})}, action: 'DROP', chains: ['INPUT']})
  const text = fw.render({instances: [{name: '2nd', ports: [443], v4: ['192.0.2.1/32'], v6: []}]})
  assert.match(text, /^ {2}set _2nd_v4 \{$/m)
  assert.match(text, /ip saddr @_2nd_v4 drop/)
})

test('instance names whose nft set names would be the same are refused, naming both', () => {
  for (const [a, b] of [
    ['web-mail', 'web_mail'],
    ['2nd', '_2nd'],
    ['-x', '_x'],
  ]) {
    const err = refusal(config({backend: 'iptables'}, ['master', a ?? '', b ?? '']))
    assert.match(err.message, new RegExp(`instances\\.2\\.name: instances ${a} and ${b} would share the nftables set name`))
  }
})

test('the keyword list holds only words a prefix could be, and nftNameProblem tells keywords from names', () => {
  assert.ok(NFT_KEYWORDS.size > 150)
  for (const w of NFT_KEYWORDS) assert.match(w, /^[a-z][a-z0-9_]{0,9}$/)
  assert.equal(nftNameProblem('rcguard'), null)
  assert.equal(nftNameProblem('filter'), null)
  assert.equal(nftNameProblem('_2nd_v4'), null)
  assert.match(nftNameProblem('2nd_v4') ?? '', /start with a letter or "_"/)
  assert.match(nftNameProblem('log') ?? '', /word of the nft language/)
})
