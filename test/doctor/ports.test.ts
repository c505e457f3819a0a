/** doctor's ports findings from `ss -ltnpH` output (as ss 6.1 of Debian 12 prints it). */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {validateConfig} from '../../src/core/config/config.js'
import {parseListeners, portFindings} from '../../src/core/doctor/findings/ports.js'

const SS = [
  'LISTEN 0      511          0.0.0.0:80         0.0.0.0:*    users:(("apache2",pid=812,fd=4),("apache2",pid=811,fd=4))',
  'LISTEN 0      511             [::]:8443          [::]:*    users:(("nginx",pid=90,fd=7))',
  'LISTEN 0      128        127.0.0.1:8080      0.0.0.0:*    users:(("apache2",pid=812,fd=5))',
  'LISTEN 0      4096         0.0.0.0:2525      0.0.0.0:*    users:(("docker-proxy",pid=77,fd=4))',
  'LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=5,fd=3))',
].join('\n')

const cfg = (ports: unknown, chains?: string[]) => validateConfig({instances: [{name: 'master', ports, logs: ['/var/log/roundcube/userlogins.log']}], ...(chains === undefined ? {} : {firewall: {chains}})}, 'test', '/')

test('parseListeners reads address, port and processes', () => {
  const l = parseListeners(SS)
  assert.deepEqual(l.map((x) => [x.address, x.port, x.processes]), [
    ['0.0.0.0', 80, ['apache2']],
    ['::', 8443, ['nginx']],
    ['127.0.0.1', 8080, ['apache2']],
    ['0.0.0.0', 2525, ['docker-proxy']],
    ['0.0.0.0', 22, ['sshd']],
  ])
})

test('a web server port the instance does not close: a warning; none of them closed: an error; loopback and sshd ignored', () => {
  const l = parseListeners(SS)
  const some = portFindings(cfg([80, 443], ['INPUT', 'DOCKER-USER']), l)
  assert.deepEqual(some.map((f) => [f.id, f.severity]), [['ports-unguarded', 'warning']])
  assert.match(some[0]?.fix ?? '', /ports: \[80, 443, 8443\]/)
  assert.deepEqual(portFindings(cfg([443], ['INPUT', 'DOCKER-USER']), l).map((f) => f.severity), ['error'])
  assert.deepEqual(portFindings(cfg([80, 8443], ['INPUT', 'DOCKER-USER']), l), [])
  assert.deepEqual(portFindings(cfg('all', ['INPUT', 'DOCKER-USER']), l), [])
})

test('a Docker-published port without DOCKER-USER in chains: an error', () => {
  const l = parseListeners(SS)
  const f = portFindings(cfg([80, 8443]), l)
  assert.deepEqual(f.map((x) => x.id), ['docker-published'])
  assert.match(f[0]?.message ?? '', /2525/)
  assert.match(f[0]?.fix ?? '', /chains: \[INPUT, DOCKER-USER\]/)
})
