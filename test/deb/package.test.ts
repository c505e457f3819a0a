/**
 * The Debian package (npm run deb, scripts/build-deb.js, packaging/deb/):
 * what it holds, that its cron line stays quiet while the timer or watch
 * runs, the real dpkg installing, upgrading, removing and purging it, and
 * lintian finding no error in it.
 *
 * Two versions are built once (RCGUARD_DEB_VERSION) into a temp directory
 * from the current bundle (npm run build first). The dpkg test needs root and
 * changes the machine's /etc, /usr and /var/lib: it refuses to run while an
 * rcguard package is installed, and purges its own in an after hook even when
 * it fails. Every dpkg call runs in a network namespace of its own (ip netns
 * exec), so the firewall rules the installed rcguard makes and the prerm's
 * flush removes are the namespace's, never the host's. Skips without root (or
 * lintian) with the reason, and fails under CI=true.
 */
import {after, test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {execa} from 'execa'
import {ROOT, netns, requireRoot} from '../helpers/env.js'

const VERSION_A = '0.1.0+debtest1'
const VERSION_B = '0.1.0+debtest2'
const out = mkdtempSync(join(tmpdir(), 'rcguard-deb-test-'))
after(() => rmSync(out, {recursive: true, force: true}))

const built = new Map<string, Promise<string>>()
/** The .deb of `version`, built once for the whole file. */
function deb(version: string): Promise<string> {
  let p = built.get(version)
  if (p === undefined) {
    p = (async () => {
      assert.ok(existsSync(join(ROOT, 'dist', 'cli.js')), 'dist/cli.js is missing: run npm run build first')
      const r = await execa('node', [join(ROOT, 'scripts', 'build-deb.js'), '--out-dir', out], {reject: false, env: {RCGUARD_DEB_VERSION: version}})
      assert.equal(r.exitCode, 0, `build-deb ${version}: ${r.stderr}`)
      return join(out, `rcguard_${version}_all.deb`)
    })()
    built.set(version, p)
  }
  return p
}

async function run(cmd: string, args: string[], options: {input?: string; env?: Record<string, string>} = {}) {
  const r = await execa(cmd, args, {reject: false, input: options.input ?? '', env: options.env, timeout: 300_000})
  return {stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1}
}

/** Lines of `dpkg-deb -c`: mode and path of each entry. */
async function contents(file: string): Promise<Map<string, string>> {
  const r = await run('dpkg-deb', ['-c', file])
  assert.equal(r.exitCode, 0, r.stderr)
  const m = new Map<string, string>()
  for (const line of r.stdout.split('\n').filter((l) => l !== '')) {
    const fields = line.split(/\s+/)
    m.set((fields[5] ?? '').replace(/^\./, '').replace(/\/$/, '') || '/', fields[0] ?? '')
  }
  return m
}

const control = async (file: string, member: string): Promise<string> => (await run('dpkg-deb', ['-I', file, member])).stdout

const data = async (file: string, path: string): Promise<string> => (await run('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$2"`, 'sh', file, path])).stdout

test('the package: the bundle without node_modules, man pages, a 0600 conffile, units and a cron line that start nothing', async () => {
  const file = await deb(VERSION_A)
  const c = await contents(file)
  for (const path of ['/usr/bin/rcguard', '/usr/lib/rcguard/bin/run.js', '/usr/lib/rcguard/dist/cli.js', '/usr/lib/rcguard/package.json', '/usr/share/man/man8/rcguard.8.gz', '/usr/share/man/man5/rcguard.yml.5.gz', '/etc/cron.d/rcguard', '/lib/systemd/system/rcguard.service', '/lib/systemd/system/rcguard.timer', '/lib/systemd/system/rcguard-watch.service', '/usr/share/doc/rcguard/copyright']) {
    assert.ok(c.has(path), `${path} in the package`)
  }
  assert.equal(c.get('/etc/rcguard/rcguard.yml'), '-rw-------', 'the configuration may hold an SMTP password: root only')
  assert.deepEqual([...c.keys()].filter((p) => p.includes('node_modules')), [], 'the bundle needs no node_modules')
  assert.deepEqual([...c.keys()].filter((p) => p.startsWith('/etc/systemd') || p.includes('.wants')), [], 'no unit enabled by the package')
  assert.deepEqual((await control(file, 'conffiles')).split('\n').filter((l) => l !== '').sort(), ['/etc/cron.d/rcguard', '/etc/rcguard/rcguard.yml'])
  const fields = await control(file, 'control')
  assert.match(fields, /^Version: 0\.1\.0\+debtest1$/m)
  assert.match(fields, /^Architecture: all$/m)
  assert.match(fields, /^Depends: nodejs \(>= 20\.17\)$/m)
  assert.match(fields, /^Installed-Size: \d+$/m)
  for (const script of ['postinst', 'prerm', 'postrm']) assert.doesNotMatch(await control(file, script), /systemctl (--system )?enable|deb-systemd-helper enable|invoke\S* start/, `${script} enables or starts nothing`)
  // The timer and the watch service never run side by side.
  assert.match(await data(file, '/lib/systemd/system/rcguard.timer'), /^Conflicts=rcguard-watch\.service$/m)
  assert.match(await data(file, '/lib/systemd/system/rcguard-watch.service'), /^Conflicts=rcguard\.timer$/m)
  const cron = await data(file, '/etc/cron.d/rcguard')
  assert.deepEqual(cron.split('\n').filter((l) => /^\s*[^#\s]+\s+\S+\s+\S+\s+\S+\s+\S+\s+root\s/.test(l)), [], 'the cron line is commented out')
  assert.match(cron, /^#\* \* \* \* \* root .*rcguard hacks --quiet$/m)
})

test('the cron line, uncommented, runs rcguard only while neither rcguard.timer nor rcguard-watch.service is active', async (t) => {
  const cron = await data(await deb(VERSION_A), '/etc/cron.d/rcguard')
  const line = /^#(\* \* \* \* \* root (.*))$/m.exec(cron)
  assert.ok(line !== null, 'a commented cron line')
  const dir = mkdtempSync(join(tmpdir(), 'rcguard-cron-'))
  t.after(() => rmSync(dir, {recursive: true, force: true}))
  // A systemctl that says active for the units in $ACTIVE (exit 0 if any, as the real is-active), or
  // "not booted with systemd" (exit 1) with NOSYSTEMD; and an rcguard that records its run.
  writeFileSync(join(dir, 'systemctl'), '#!/bin/sh\n[ -n "$NOSYSTEMD" ] && { echo "System has not been booted with systemd" >&2; exit 1; }\n[ "$1" = --quiet ] && shift\n[ "$1" = is-active ] || exit 2\nshift\nfor u; do case " $ACTIVE " in *" $u "*) exit 0;; esac; done\nexit 3\n')
  writeFileSync(join(dir, 'rcguard'), `#!/bin/sh\necho "$@" >> ${dir}/ran\n`)
  chmodSync(join(dir, 'systemctl'), 0o755)
  chmodSync(join(dir, 'rcguard'), 0o755)
  const command = (line[2] ?? '').replaceAll('/usr/bin/rcguard', join(dir, 'rcguard'))
  const cronRun = async (env: Record<string, string>): Promise<string> => {
    rmSync(join(dir, 'ran'), {force: true})
    await run('/bin/sh', ['-c', command], {env: {PATH: `${dir}:/usr/bin:/bin`, ...env}})
    return existsSync(join(dir, 'ran')) ? readFileSync(join(dir, 'ran'), 'utf8') : ''
  }
  assert.equal(await cronRun({ACTIVE: 'rcguard.timer'}), '', 'timer active: cron does nothing')
  assert.equal(await cronRun({ACTIVE: 'rcguard-watch.service'}), '', 'watch active: cron does nothing')
  assert.equal(await cronRun({ACTIVE: 'cron.service'}), 'hacks --quiet\n', 'neither active: cron runs rcguard hacks')
  assert.equal(await cronRun({NOSYSTEMD: '1'}), 'hacks --quiet\n', 'no systemd: cron runs rcguard hacks')
})

/** What the package may leave on the machine: compared before install and after purge. */
const WATCHED = ['/etc/rcguard', '/var/lib/rcguard', '/usr/lib/rcguard', '/usr/bin/rcguard', '/usr/share/man/man8/rcguard.8.gz', '/usr/share/man/man5/rcguard.yml.5.gz', '/lib/systemd/system/rcguard.service', '/lib/systemd/system/rcguard.timer', '/lib/systemd/system/rcguard-watch.service', '/etc/cron.d/rcguard', '/usr/share/doc/rcguard', '/usr/share/lintian/overrides/rcguard']

function snapshot(): string[] {
  const found: string[] = []
  const walk = (p: string): void => {
    if (!existsSync(p)) return
    found.push(p)
    if (statSync(p).isDirectory()) for (const name of readdirSync(p).sort()) walk(join(p, name))
  }
  for (const p of WATCHED) walk(p)
  return found
}

test('dpkg: install runs the installed dry run, an upgrade keeps an edited conffile, remove lifts the blocks and keeps the state, purge leaves nothing', async (t) => {
  if (!requireRoot(t)) return
  const installed = await run('dpkg-query', ['-W', '-f', '${db:Status-Status}', 'rcguard'])
  if (installed.stdout.trim() !== '' && installed.stdout.trim() !== 'not-installed') {
    const reason = `an rcguard package is on this machine (${installed.stdout.trim()}): the test does not replace it`
    if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`)
    t.skip(reason)
    return
  }
  const [a, b] = await Promise.all([deb(VERSION_A), deb(VERSION_B)])
  let ns: Awaited<ReturnType<typeof netns>> | undefined
  /** dpkg in the namespace, retried while another dpkg or apt holds its lock. */
  const dpkg = async (...args: string[]) => {
    assert.ok(ns !== undefined)
    for (let i = 0; ; i++) {
      const r = await ns.run('dpkg', args)
      if (r.exitCode === 0 || !/lock/i.test(r.stderr) || i >= 30) return r
      await new Promise((res) => setTimeout(res, 2000))
    }
  }
  // Added before the namespace's own after hook (which deletes it), so it runs first (after hooks run in the
  // order they were added): the package is purged, its prerm's flush in the namespace, even when the test fails.
  t.after(async () => {
    if (ns !== undefined) await dpkg('--purge', 'rcguard')
  })
  ns = await netns(t)
  const before = snapshot()

  let r = await dpkg('-i', a)
  assert.equal(r.exitCode, 0, `dpkg -i A: ${r.stderr}`)
  assert.equal(statSync('/etc/rcguard/rcguard.yml').mode & 0o7777, 0o600)
  assert.equal(statSync('/var/lib/rcguard').mode & 0o7777, 0o700)

  // The installed example on a machine without Roundcube: /var/log hidden under an empty tmpfs in a mount
  // namespace of its own. The missing logs are warnings, the dry run exits 0, and rcguard accepts its own
  // installed files (no warning about the configuration or the state directory).
  r = await ns.run('unshare', ['--mount', 'sh', '-c', 'mount -t tmpfs -o mode=0755 none /var/log && exec /usr/bin/rcguard hacks --dry-run'])
  assert.equal(r.exitCode, 0, `installed dry run: ${r.stderr}`)
  assert.match(r.stdout, /rule set that would be applied/)
  const warnings = r.stderr.split('\n').filter((l) => l !== '')
  assert.ok(warnings.length > 0 && warnings.every((l) => /^rcguard: warning: log \/var\/log\/roundcube\/\S+ does not exist/.test(l)), r.stderr)
  assert.ok(!existsSync('/var/lib/rcguard/db.json'), 'a dry run writes no state')

  // The installed units as systemd itself loads them (no systemd as PID 1 needed): directives, the
  // ExecStart binary, the timer's unit and the Documentation= man pages. Any complaint fails the test.
  const units = ['rcguard.service', 'rcguard.timer', 'rcguard-watch.service'].map((u) => `/lib/systemd/system/${u}`)
  r = await run('systemd-analyze', ['verify', '--man=yes', ...units])
  assert.equal(r.exitCode, 0, `systemd-analyze verify: ${r.stderr}`)
  assert.equal(r.stderr.trim(), '', `systemd-analyze verify says: ${r.stderr}`)

  // flush with nothing to remove, as the prerm runs it on a machine where rcguard never blocked.
  r = await ns.run('/usr/bin/rcguard', ['flush', '--yes', '--all'])
  assert.equal(r.exitCode, 0, `flush --yes --all: ${r.stderr}`)
  r = await ns.run('/usr/bin/rcguard', ['block', '203.0.113.9'])
  assert.equal(r.exitCode, 0, `block: ${r.stderr}`)
  const blocked = async (): Promise<boolean> => (await ns.run('sh', ['-c', 'nft list ruleset 2>/dev/null; iptables-save 2>/dev/null'])).stdout.includes('203.0.113.9')
  assert.ok(await blocked(), 'the block is a rule in the namespace')

  appendFileSync('/etc/rcguard/rcguard.yml', '# edited by the admin\n')
  r = await dpkg('-i', '--force-confold', b)
  assert.equal(r.exitCode, 0, `dpkg -i B: ${r.stderr}`)
  assert.equal((await run('dpkg-query', ['-W', '-f', '${Version}', 'rcguard'])).stdout, VERSION_B)
  assert.match(readFileSync('/etc/rcguard/rcguard.yml', 'utf8'), /# edited by the admin\n$/, 'the upgrade keeps the edited conffile')
  assert.ok(await blocked(), 'an upgrade keeps the blocks')

  const listed = (await run('dpkg', ['-L', 'rcguard'])).stdout.split('\n').filter((l) => l.startsWith('/'))
  const own = listed.filter((p) => WATCHED.some((w) => p === w || p.startsWith(`${w}/`)))
  assert.ok(own.length > 10, `dpkg -L rcguard: ${listed.join(' ')}`)

  r = await dpkg('-r', 'rcguard')
  assert.equal(r.exitCode, 0, `dpkg -r: ${r.stderr}`)
  assert.ok(!(await blocked()), 'remove lifts the blocks: nothing would expire them once rcguard is gone')
  assert.ok(!existsSync('/usr/bin/rcguard'))
  assert.ok(existsSync('/var/lib/rcguard/db.json'), 'remove keeps the state')
  assert.match(readFileSync('/etc/rcguard/rcguard.yml', 'utf8'), /# edited by the admin/, 'remove keeps the configuration')

  r = await dpkg('-P', 'rcguard')
  assert.equal(r.exitCode, 0, `dpkg -P: ${r.stderr}`)
  assert.deepEqual(own.filter((p) => existsSync(p)), [], 'every file dpkg -L listed is gone')
  assert.deepEqual(snapshot(), before, 'purge leaves nothing behind')
  assert.match((await run('dpkg-query', ['-W', '-f', '${db:Status-Status}', 'rcguard'])).stdout, /^(not-installed)?$/)
})

test('lintian reports no errors on the package', async (t: TestContext) => {
  if ((await run('sh', ['-c', 'command -v lintian'])).exitCode !== 0) {
    const reason = 'lintian is not installed (apt-get install lintian)'
    if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`)
    t.skip(reason)
    return
  }
  const r = await run('lintian', ['--pedantic', '--info', await deb(VERSION_A)], {env: {...process.env, HOME: out} as Record<string, string>})
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^[EWIPX]: /.test(l))
  for (const l of lines) t.diagnostic(l)
  assert.deepEqual(lines.filter((l) => l.startsWith('E: ')), [], 'lintian errors')
  assert.ok(r.exitCode === 0 || lines.length > 0, `lintian failed to run: ${r.stderr}`)
})
