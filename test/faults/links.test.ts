/**
 * rcguard runs as root: nothing in its database directory, and no program it
 * runs, may be a lever for another local user (issue 11, "It follows links and
 * trusts directories it should not").
 *
 * Every test makes a real unprivileged user (useradd, a unique rcg-test-*
 * name, removed with userdel -r after), who owns a directory or plants links
 * with runuser, and runs the real CLI (bin/run.js over dist/) as root. It
 * checks that the file a link points to is untouched (content, mode, owner),
 * that the run exits 4 with its one line naming the directory or file and the
 * fix, and that nothing in the directory changed. Then the administrator puts
 * the directory right as the message says (chown root:root DIR && chmod 700
 * DIR), which leaves what the user planted in place, and rcguard must still
 * not follow any of it.
 *
 * Notification programs (notify.command and the sendmail path) that the user
 * can change, or that sit in a directory the user can write, are refused with
 * one warning and not run (they would touch a file), and the run goes on.
 *
 * Needs root (useradd, chown, runuser); skips with the reason otherwise, and
 * under CI=true a skip fails.
 */
import {test, type TestContext} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {execa} from 'execa'
import {appendLines, burst, cli, isRoot, netns, oneLine, setup, stderrLines, type CliResult, type Setup, at, nowEnv} from '../helpers/env.js'

const FIXTURE_V1 = new URL('../fixtures/store/db-v1.json', import.meta.url)

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

interface User {
  name: string
  uid: number
  gid: number
  /** Runs a command as the user. */
  as(cmd: string, args: string[]): Promise<void>
}

/** Root, or a visible skip (a failure under CI=true). */
function needRoot(t: TestContext): boolean {
  if (isRoot) return true
  const reason = 'needs root to create a user (useradd), hand it files (chown) and run rcguard as root'
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}: the link and directory tests must run in CI`)
  t.skip(reason)
  return false
}

/** A fresh unprivileged user, removed (with its home) after the test. */
async function makeUser(t: TestContext): Promise<User> {
  const name = `rcg-test-${randomBytes(4).toString('hex')}`
  await execa('useradd', ['--create-home', '--user-group', '--shell', '/usr/sbin/nologin', name])
  t.after(async () => {
    await execa('userdel', ['-r', name], {reject: false})
  })
  const uid = Number((await execa('id', ['-u', name])).stdout)
  const gid = Number((await execa('id', ['-g', name])).stdout)
  return {
    name,
    uid,
    gid,
    as: async (cmd, args) => {
      await execa('runuser', ['-u', name, '--', cmd, ...args])
    },
  }
}

/** A setup whose directory the user may pass through (it holds the database directory and the victims). */
function reachable(t: TestContext, extra: Record<string, unknown> = {}): Setup {
  const s = setup(t, extra)
  chmodSync(s.dir, 0o711)
  return s
}

/** A file root cares about, for links to point at: its content, mode and owner must never change. */
function victim(path: string, owner = 0, content: string | Buffer = 'precious: root must never change this file\n'): {path: string; untouched: (what: string) => void} {
  writeFileSync(path, content)
  chmodSync(path, 0o644)
  chownSync(path, owner, owner)
  const before = {content: readFileSync(path, 'utf8'), mode: statSync(path).mode, uid: statSync(path).uid, gid: statSync(path).gid}
  return {
    path,
    untouched: (what) => {
      const st = statSync(path)
      assert.deepEqual({content: readFileSync(path, 'utf8'), mode: st.mode, uid: st.uid, gid: st.gid}, before, `${what}: the link's target ${path} was changed`)
    },
  }
}

/** Every entry of a directory: type, owner, mode, and content (a digest) or link target. */
function snapshot(dir: string, ignore: string[] = []): string[] {
  if (!existsSync(dir)) return ['(no directory)']
  const st = lstatSync(dir)
  const out = [`. uid=${st.uid} mode=${(st.mode & 0o7777).toString(8)}`]
  for (const name of readdirSync(dir).sort()) {
    if (ignore.includes(name)) continue
    const p = join(dir, name)
    const e = lstatSync(p)
    const what = e.isSymbolicLink() ? `-> ${readlinkSync(p)}` : e.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16) : 'dir'
    out.push(`${name} uid=${e.uid} mode=${(e.mode & 0o7777).toString(8)} nlink=${e.nlink} ${what}`)
  }
  return out
}

/** A valid current database with one whitelisted network, written by rcguard itself in a directory it trusts. */
async function seed(s: Setup): Promise<void> {
  const r = await cli(['whitelist', '198.51.100.0/24', '--config', s.config])
  assert.equal(r.exitCode, 0, `seeding the database: ${r.stderr}`)
}

/** Fails unless the run was refused with exit 4 and exactly one line matching every pattern. */
function refused(r: CliResult, what: string, ...patterns: RegExp[]): void {
  assert.equal(r.exitCode, 4, `${what}: exit ${r.exitCode}\n${r.stdout}${r.stderr}`)
  oneLine(r, what, /^rcguard: /, ...patterns)
}

const dirOwnedBy = (dir: string, user: User) =>
  new RegExp(`^rcguard: database directory ${escape(dir)} is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root: .*; nothing was read or written; fix: chown root:root ${escape(dir)} && chmod 700 ${escape(dir)}$`)

/** What the message tells the administrator to do. */
function putRight(dir: string): void {
  chownSync(dir, 0, 0)
  chmodSync(dir, 0o700)
}

test('a database directory owned by another user (a www-data directory): every command exits 4 naming it and the fix, nothing read or written; put right, a database file of that user is refused too', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const s = reachable(t)
  const dbDir = dirname(s.db)
  await seed(s)
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  // The careless admin: chown -R www-data /var/lib/rcguard. The user then rewrites the database as they like.
  chownSync(dbDir, user.uid, user.gid)
  chmodSync(dbDir, 0o755)
  for (const name of readdirSync(dbDir)) chownSync(join(dbDir, name), user.uid, user.gid)
  await user.as('sh', ['-c', `sed -i 's/198.51.100.0/0.0.0.0/' ${s.db}`])
  const before = snapshot(dbDir)
  for (const args of [['hacks'], ['hacks', '--dry-run'], ['list'], ['block', '192.0.2.1'], ['unblock', '198.51.100.7'], ['whitelist', '192.0.2.0/24'], ['scan'], ['flush', '--yes']]) {
    const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
    refused(r, args.join(' '), dirOwnedBy(dbDir, user))
    assert.deepEqual(snapshot(dbDir), before, `${args.join(' ')}: nothing in the directory changed`)
  }
  putRight(dbDir)
  const file = await cli(['list', '--config', s.config], {env: nowEnv(3)})
  refused(file, 'the database file is the user\'s', new RegExp(`^rcguard: database ${escape(s.db)} is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root; it was left untouched: move it aside and run "rcguard flush --yes"`))
  // Once the administrator has looked at it and taken it over, it is used.
  chownSync(s.db, 0, 0)
  const ok = await cli(['list', '--config', s.config], {env: nowEnv(3)})
  assert.equal(ok.exitCode, 0, ok.stderr)
})

test('a database directory others can write (0777, 1777, group-writable), or inside one (a /var/lib a group may write, a home): exit 4 naming it and the fix; a sticky /tmp above is fine, and the directory rcguard makes is 0700', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const cases: {what: string; make: (s: Setup) => {dbDir: string; database: string}; why: (dir: string) => RegExp}[] = [
    {
      what: 'world-writable',
      make: (s) => {
        const d = dirname(s.db)
        mkdirSync(d)
        chmodSync(d, 0o777)
        return {dbDir: d, database: s.db}
      },
      why: (d) => new RegExp(`^rcguard: database directory ${escape(d)} is writable by every user \\(mode 0777\\): .*; fix: chown root:root ${escape(d)} && chmod 700 ${escape(d)}$`),
    },
    {
      what: 'world-writable and sticky',
      make: (s) => {
        const d = dirname(s.db)
        mkdirSync(d)
        chmodSync(d, 0o1777)
        return {dbDir: d, database: s.db}
      },
      why: (d) => new RegExp(`^rcguard: database directory ${escape(d)} is writable by every user \\(mode 1777\\)`),
    },
    {
      what: 'group-writable',
      make: (s) => {
        const d = dirname(s.db)
        mkdirSync(d)
        chownSync(d, 0, user.gid)
        chmodSync(d, 0o770)
        return {dbDir: d, database: s.db}
      },
      why: (d) => new RegExp(`^rcguard: database directory ${escape(d)} is writable by its group \\(gid ${user.gid}\\) \\(mode 0770\\)`),
    },
    {
      what: 'inside a group-writable directory (like /var/local, group staff)',
      make: (s) => {
        const varLib = join(s.dir, 'var-lib')
        mkdirSync(varLib)
        chownSync(varLib, 0, user.gid)
        chmodSync(varLib, 0o2775)
        const d = join(varLib, 'rcguard')
        mkdirSync(d, {mode: 0o700})
        return {dbDir: d, database: join(d, 'db.json')}
      },
      why: (d) =>
        new RegExp(
          `^rcguard: database directory ${escape(d)} is inside ${escape(dirname(d))}, which is writable by its group \\(gid ${user.gid}\\) \\(mode 2775\\) and not sticky: .*; fix: chmod go-w ${escape(dirname(d))}, or move the database elsewhere \\(database: in the configuration\\)$`,
        ),
    },
    {
      what: "inside the user's home",
      make: (s) => {
        const home = join(s.dir, 'home')
        mkdirSync(home)
        chownSync(home, user.uid, user.gid)
        chmodSync(home, 0o755)
        const d = join(home, 'rcguard')
        mkdirSync(d, {mode: 0o700})
        return {dbDir: d, database: join(d, 'db.json')}
      },
      why: (d) => new RegExp(`^rcguard: database directory ${escape(d)} is inside ${escape(dirname(d))}, which is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root: .*; fix: chown root:root ${escape(dirname(d))}, or move`),
    },
    {
      what: "through the user's link in a sticky directory",
      make: (s) => {
        const sticky = join(s.dir, 'tmp')
        mkdirSync(sticky)
        chmodSync(sticky, 0o1777)
        const real = join(s.dir, 'real')
        mkdirSync(real, {mode: 0o700})
        return {dbDir: join(sticky, 'link'), database: join(sticky, 'link', 'db.json')}
      },
      why: (d) => new RegExp(`^rcguard: database directory ${escape(d)} is a symbolic link owned by ${escape(user.name)} \\(uid ${user.uid}\\) in ${escape(dirname(d))}, which every user can write: its owner can point it anywhere`),
    },
  ]
  for (const c of cases) {
    const s = reachable(t)
    const {dbDir, database} = c.make(s)
    if (c.what.includes('link')) await user.as('ln', ['-s', join(s.dir, 'real'), dbDir])
    writeFileSync(s.config, JSON.stringify({database, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none'}}))
    appendLines(s.log, burst(at(0), '203.0.113.9', 6))
    const before = snapshot(dbDir)
    for (const args of [['hacks'], ['hacks', '--dry-run'], ['list'], ['block', '192.0.2.1']]) {
      const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
      refused(r, `${c.what}: ${args.join(' ')}`, c.why(dbDir), /nothing was read or written/)
      assert.deepEqual(snapshot(dbDir), before, `${c.what}: ${args.join(' ')}: nothing in the directory changed`)
    }
  }
  // A sticky world-writable directory above (like /tmp) is fine; the directory rcguard makes in it is its own, 0700.
  const s = reachable(t)
  const sticky = join(s.dir, 'tmp')
  mkdirSync(sticky)
  chmodSync(sticky, 0o1777)
  const database = join(sticky, 'rcguard', 'db.json')
  writeFileSync(s.config, JSON.stringify({database, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none'}}))
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.match(r.stdout, /blocked 203\.0\.113\.9/)
  assert.equal(statSync(dirname(database)).mode & 0o7777, 0o700)
  assert.equal(statSync(database).mode & 0o777, 0o600)
  // A link root made (say /var/lib/rcguard -> /srv/rcguard), even in the sticky directory, is followed.
  const moved = join(s.dir, 'srv')
  mkdirSync(moved, {mode: 0o700})
  symlinkSync(moved, join(sticky, 'srv-link'))
  const linked = join(sticky, 'srv-link', 'db.json')
  writeFileSync(s.config, JSON.stringify({database: linked, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none'}}))
  const viaLink = await cli(['block', '192.0.2.1', '--config', s.config], {env: nowEnv(3)})
  assert.equal(viaLink.exitCode, 0, viaLink.stderr)
  assert.equal(lstatSync(join(moved, 'db.json')).isFile(), true)
})

test('a planted db.json.lock (a link to a root file, a dangling link, a hard link, the user\'s own file): the target untouched, nothing created, exit 4; also once the directory is put right', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const s = reachable(t)
  const dbDir = dirname(s.db)
  await seed(s)
  const lock = `${s.db}.lock`
  rmSync(lock)
  const target = victim(join(s.dir, 'shadow'))
  const made = join(s.dir, 'nologin')
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  const lockLine = (why: string) => new RegExp(`^rcguard: the lock file ${escape(lock)} ${why}: someone else made it; nothing was read or written; fix: rm ${escape(lock)} \\(rcguard makes it anew\\)$`)

  chownSync(dbDir, user.uid, user.gid)
  for (const planted of [target.path, made]) {
    const why = `is a symbolic link (to ${planted}); rcguard never follows links there`
    await user.as('ln', ['-sfn', planted, lock])
    const before = snapshot(dbDir)
    for (const args of [['hacks'], ['block', '192.0.2.1']]) {
      const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
      refused(r, `lock -> ${planted}: ${args.join(' ')}`, dirOwnedBy(dbDir, user))
      assert.deepEqual(snapshot(dbDir), before)
      target.untouched(`lock -> ${planted}`)
      assert.equal(existsSync(made), false, 'root created the file a dangling lock link named')
    }
    // Put right as told; the link stays where the user left it, and is still not followed.
    putRight(dbDir)
    const after = snapshot(dbDir)
    for (const args of [['hacks'], ['block', '192.0.2.1']]) {
      const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
      refused(r, `lock -> ${planted} in a directory put right: ${args.join(' ')}`, lockLine(escape(why)))
      assert.deepEqual(snapshot(dbDir), after)
      target.untouched(`lock -> ${planted} in a directory put right`)
      assert.equal(existsSync(made), false, 'root created the file a dangling lock link named')
    }
    chownSync(dbDir, user.uid, user.gid)
    chmodSync(dbDir, 0o755)
  }
  putRight(dbDir)
  // A hard link to a root file (where fs.protected_hardlinks is off, anyone may make one): its mode is not "corrected".
  rmSync(lock)
  linkSync(target.path, lock)
  const hard = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  refused(hard, 'a hard link', lockLine('has 2 hard links \\(it may be another file too\\)'))
  target.untouched('a hard-linked lock file')
  // The user's own file: they could hold its flock for ever.
  rmSync(lock)
  writeFileSync(lock, '')
  chownSync(lock, user.uid, user.gid)
  const theirs = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  refused(theirs, "the user's lock file", lockLine(`is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root`))
  // Removed as told: rcguard makes its own, 0600, and the run goes on.
  rmSync(lock)
  const ok = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.match(ok.stdout, /blocked 203\.0\.113\.9/)
  const st = lstatSync(lock)
  assert.ok(st.isFile())
  assert.deepEqual([st.uid, st.mode & 0o777, st.nlink], [0, 0o600, 1])
})

test('planted temp-file names (.db.json.PID.HEX.tmp of a dead PID, the name orphan clean-up looks for): not followed, not removed, the target untouched', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const s = reachable(t)
  const dbDir = dirname(s.db)
  await seed(s)
  const target = victim(join(s.dir, 'shadow'))
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  // The random part cannot be guessed, and the file is made with O_EXCL; the names of a killed writer's leftovers can.
  const link = join(dbDir, '.db.json.99999999.deadbeef.tmp')
  const file = join(dbDir, '.db.json.99999998.0badf00d.tmp')
  chownSync(dbDir, user.uid, user.gid)
  await user.as('ln', ['-s', target.path, link])
  await user.as('sh', ['-c', `echo theirs > ${file}`])
  const before = snapshot(dbDir)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  refused(r, 'planted temp names', dirOwnedBy(dbDir, user))
  assert.deepEqual(snapshot(dbDir), before)
  target.untouched('planted temp names')
  putRight(dbDir)
  const ok = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.match(ok.stdout, /blocked 203\.0\.113\.9/)
  target.untouched('planted temp names in a directory put right')
  // Not rcguard's leftovers: they stay as they were for the administrator to look at.
  assert.equal(readlinkSync(link), target.path)
  assert.equal(readFileSync(file, 'utf8'), 'theirs\n')
  assert.equal(lstatSync(s.db).isFile(), true)
  assert.equal(lstatSync(s.db).uid, 0)
})

test('a planted db.json.v1 link before a migration: the target untouched, the old database not migrated (nothing lost), exit 4; removed as told, the migration keeps the copy', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const s = reachable(t)
  const dbDir = dirname(s.db)
  const v1 = readFileSync(FIXTURE_V1)
  mkdirSync(dbDir, {mode: 0o700})
  writeFileSync(s.db, v1, {mode: 0o600})
  const keep = `${s.db}.v1`
  const target = victim(join(s.dir, 'shadow'))
  chownSync(dbDir, user.uid, user.gid)
  await user.as('ln', ['-s', target.path, keep])
  const before = snapshot(dbDir)
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  refused(r, '.v1 link', dirOwnedBy(dbDir, user))
  assert.deepEqual(snapshot(dbDir), before)
  target.untouched('.v1 link')
  putRight(dbDir)
  // The lock file rcguard makes for itself is the one change allowed here.
  const after = snapshot(dbDir, ['db.json.lock'])
  for (const args of [['hacks'], ['block', '198.18.7.7']]) {
    const again = await cli([...args, '--config', s.config], {env: nowEnv(3)})
    refused(
      again,
      `.v1 link in a directory put right: ${args.join(' ')}`,
      new RegExp(
        `^rcguard: cannot keep the schema 1 database as ${escape(keep)} before migrating it: it is a symbolic link \\(to ${escape(target.path)}\\); rcguard never follows links there; remove it \\(rm ${escape(keep)}\\) and run rcguard again; the database was left untouched$`,
      ),
    )
    assert.deepEqual(snapshot(dbDir, ['db.json.lock']), after)
    assert.deepEqual(readFileSync(s.db), v1, 'the schema 1 database is as it was')
    target.untouched('.v1 link in a directory put right')
  }
  rmSync(keep)
  const ok = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.deepEqual(readFileSync(keep), v1)
  assert.deepEqual([lstatSync(keep).uid, lstatSync(keep).mode & 0o777], [0, 0o600])
})

test('db.json itself a link (to a database the user wrote): exit 4, the target untouched; also once the directory is put right', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const s = reachable(t)
  const dbDir = dirname(s.db)
  await seed(s)
  // The user's own database, whitelisting everyone, where the user keeps it.
  const theirs = join(s.dir, 'theirs.json')
  const target = victim(theirs, user.uid, readFileSync(s.db, 'utf8').replace('198.51.100.0/24', '0.0.0.0/0'))
  rmSync(s.db)
  chownSync(dbDir, user.uid, user.gid)
  await user.as('ln', ['-s', theirs, s.db])
  const before = snapshot(dbDir)
  for (const args of [['list'], ['hacks'], ['hacks', '--dry-run']]) {
    const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
    refused(r, `db.json link: ${args.join(' ')}`, dirOwnedBy(dbDir, user))
    assert.deepEqual(snapshot(dbDir), before)
    target.untouched('db.json link')
  }
  putRight(dbDir)
  const after = snapshot(dbDir)
  for (const args of [['list'], ['hacks'], ['whitelist', '192.0.2.0/24']]) {
    const r = await cli([...args, '--config', s.config], {env: nowEnv(3)})
    refused(
      r,
      `db.json link in a directory put right: ${args.join(' ')}`,
      new RegExp(`^rcguard: database ${escape(s.db)} is a symbolic link \\(to ${escape(theirs)}\\); rcguard never follows links there; it was left untouched: move it aside and run "rcguard flush --yes"`),
    )
    assert.deepEqual(snapshot(dbDir), after)
    target.untouched('db.json link in a directory put right')
  }
})

test('a planted db.json.fwcheck link (nftables check cache, pointing at a cache the user wrote): exit 4; put right, the cache is not trusted, the link replaced by root\'s own file, the target untouched', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const ns = await netns(t)
  const s = reachable(t, {firewall: {backend: 'nftables'}})
  const dbDir = dirname(s.db)
  const cache = `${s.db}.fwcheck`
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  const first = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(3)})
  assert.equal(first.exitCode, 0, first.stderr)
  const trusted = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(4)})
  assert.equal(trusted.exitCode, 0, trusted.stderr)
  const UNLISTED = /^firewall: nf_tables generation \d+ unchanged since the table was last seen as wanted/m
  assert.match(trusted.stdout, UNLISTED, "rcguard's own check cache is used (so its absence below means something)")
  // The user keeps a copy of a cache that matches (as one who knows the configuration could compute), and plants a link to it.
  const theirs = join(s.dir, 'theirs.fwcheck')
  const target = victim(theirs, user.uid, readFileSync(cache))
  chownSync(dbDir, user.uid, user.gid)
  await user.as('rm', ['-f', cache])
  await user.as('ln', ['-s', theirs, cache])
  const before = snapshot(dbDir)
  const r = await cli(['hacks', '--config', s.config], {netns: ns.name, env: nowEnv(5)})
  refused(r, '.fwcheck link', dirOwnedBy(dbDir, user))
  assert.deepEqual(snapshot(dbDir), before)
  target.untouched('.fwcheck link')
  putRight(dbDir)
  const ok = await cli(['hacks', '--verbose', '--config', s.config], {netns: ns.name, env: nowEnv(5)})
  assert.equal(ok.exitCode, 0, ok.stderr)
  assert.doesNotMatch(ok.stdout, UNLISTED, 'a check cache reached through a link was trusted')
  assert.match(ok.stdout, /firewall already as wanted/)
  target.untouched('.fwcheck link in a directory put right')
  const st = lstatSync(cache)
  assert.ok(st.isFile(), 'the link is replaced by a file of rcguard\'s')
  assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o600])
})

/** A notification program that leaves a mark when it runs. */
function marker(path: string, mark: string): void {
  writeFileSync(path, `#!/bin/sh\ntouch ${mark}\ncat >/dev/null\n`)
  chmodSync(path, 0o755)
}

test('a notification program (notify.command) the user can change, or in a directory the user can write, or found on PATH there: one warning, not run, the run goes on', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const cases: {what: string; place: (s: Setup, mark: string) => {argv: string[]; env?: Record<string, string>}; why: RegExp}[] = [
    {
      what: "the user's own program",
      place: (s, mark) => {
        const p = join(s.dir, 'notify-admin')
        marker(p, mark)
        chownSync(p, user.uid, user.gid)
        return {argv: [p]}
      },
      why: new RegExp(`notify-admin is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root: whoever can change it could run code as root; fix: chown root:root .*notify-admin && chmod go-w .*notify-admin$`),
    },
    {
      what: 'a program every user may write',
      place: (s, mark) => {
        const p = join(s.dir, 'notify-admin')
        marker(p, mark)
        chmodSync(p, 0o777)
        return {argv: [p]}
      },
      why: /notify-admin is writable by every user \(mode 0777\): whoever can change it could run code as root/,
    },
    {
      what: "root's program in the user's directory",
      place: (s, mark) => {
        const d = join(s.dir, 'bin')
        mkdirSync(d)
        chownSync(d, user.uid, user.gid)
        const p = join(d, 'notify-admin')
        marker(p, mark)
        return {argv: [p]}
      },
      why: new RegExp(`it sits in .*/bin, which is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root: whoever can change it could run code as root; fix: chown root:root .*/bin$`),
    },
    {
      what: "a bare name found on PATH in the user's directory",
      place: (s, mark) => {
        const d = join(s.dir, 'bin')
        mkdirSync(d)
        chownSync(d, user.uid, user.gid)
        marker(join(d, 'rcg-notify-admin'), mark)
        return {argv: ['rcg-notify-admin'], env: {PATH: `${d}:/usr/bin:/bin`}}
      },
      why: /it sits in .*\/bin, which is owned by/,
    },
  ]
  for (const c of cases) {
    const s = reachable(t)
    const mark = join(s.dir, 'it-ran')
    const {argv, env} = c.place(s, mark)
    writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none'}, notify: {command: {argv}}}))
    appendLines(s.log, burst(at(0), '203.0.113.9', 6))
    const r = await cli(['hacks', '--config', s.config], {env: {...nowEnv(3), ...env}})
    assert.equal(r.exitCode, 0, `${c.what}: ${r.stderr}`)
    assert.match(r.stdout, /^blocked 203\.0\.113\.9 /m, `${c.what}: the run goes on`)
    const lines = stderrLines(r)
    assert.equal(lines.length, 1, `${c.what}: one warning:\n${r.stderr}`)
    assert.match(lines[0] ?? '', /^rcguard: warning: notification by command \S+ refused, not run: /, c.what)
    assert.match(lines[0] ?? '', c.why, c.what)
    assert.equal(existsSync(mark), false, `${c.what}: the program ran`)
  }
  // Root's program in root's directory runs.
  const s = reachable(t)
  const mark = join(s.dir, 'it-ran')
  const d = join(s.dir, 'bin')
  mkdirSync(d, {mode: 0o755})
  marker(join(d, 'notify-admin'), mark)
  writeFileSync(s.config, JSON.stringify({database: s.db, instances: [{name: 'master', logs: [s.log], ports: [443]}], firewall: {backend: 'none'}, notify: {command: {argv: [join(d, 'notify-admin')]}}}))
  appendLines(s.log, burst(at(0), '203.0.113.9', 6))
  const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
  assert.equal(r.exitCode, 0, r.stderr)
  assert.equal(r.stderr, '')
  assert.equal(existsSync(mark), true, "root's own program runs")
})

test('a sendmail path (notify.email.transport.sendmail.path) the user can change, or in a directory the user can write: one warning, not run, the run goes on', async (t) => {
  if (!needRoot(t)) return
  const user = await makeUser(t)
  const run = async (what: string, place: (s: Setup, mark: string) => string) => {
    const s = reachable(t)
    const mark = join(s.dir, 'it-ran')
    const path = place(s, mark)
    writeFileSync(
      s.config,
      JSON.stringify({
        database: s.db,
        instances: [{name: 'master', logs: [s.log], ports: [443]}],
        firewall: {backend: 'none'},
        notify: {email: {to: ['admin@example.com'], transport: {sendmail: {path}}}},
      }),
    )
    appendLines(s.log, burst(at(0), '203.0.113.9', 6))
    const r = await cli(['hacks', '--config', s.config], {env: nowEnv(3)})
    assert.equal(r.exitCode, 0, `${what}: ${r.stderr}`)
    assert.match(r.stdout, /^blocked 203\.0\.113\.9 /m, `${what}: the run goes on`)
    return {r, ran: existsSync(mark)}
  }
  for (const [what, place, why] of [
    [
      "the user's own sendmail",
      (s: Setup, mark: string) => {
        const p = join(s.dir, 'sendmail')
        marker(p, mark)
        chownSync(p, user.uid, user.gid)
        return p
      },
      new RegExp(`sendmail is owned by ${escape(user.name)} \\(uid ${user.uid}\\), not root: whoever can change it could run code as root`),
    ],
    [
      "root's sendmail in the user's directory",
      (s: Setup, mark: string) => {
        const d = join(s.dir, 'sbin')
        mkdirSync(d)
        chownSync(d, user.uid, user.gid)
        marker(join(d, 'sendmail'), mark)
        return join(d, 'sendmail')
      },
      /it sits in .*\/sbin, which is owned by/,
    ],
    [
      "a link to root's sendmail, in a directory the user's group may write",
      (s: Setup, mark: string) => {
        marker(join(s.dir, 'real-sendmail'), mark)
        const d = join(s.dir, 'sbin')
        mkdirSync(d)
        chownSync(d, 0, user.gid)
        chmodSync(d, 0o775)
        // A link root made; what matters is the directory it sits in.
        symlinkSync(join(s.dir, 'real-sendmail'), join(d, 'sendmail'))
        return join(d, 'sendmail')
      },
      new RegExp(`it sits in .*/sbin, which is writable by its group \\(gid ${user.gid}\\) \\(mode 0775\\) and not sticky`),
    ],
  ] as const) {
    const {r, ran} = await run(what, place)
    const lines = stderrLines(r)
    assert.equal(lines.length, 1, `${what}: one warning:\n${r.stderr}`)
    assert.match(lines[0] ?? '', /^rcguard: warning: notification by e-mail via sendmail \S+ refused, not run: /, what)
    assert.match(lines[0] ?? '', why, what)
    assert.equal(ran, false, `${what}: sendmail ran`)
  }
  const ok = await run("root's sendmail", (s, mark) => {
    const d = join(s.dir, 'sbin')
    mkdirSync(d, {mode: 0o755})
    marker(join(d, 'sendmail'), mark)
    return join(d, 'sendmail')
  })
  assert.equal(ok.r.stderr, '')
  assert.equal(ok.ran, true, "root's own sendmail runs")
})
