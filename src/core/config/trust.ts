/**
 * What rcguard, running as root, may trust on the file system: a directory or
 * a program that nobody but root (or the user running rcguard) can change.
 *
 * A path is walked one component at a time from `/`, the way the kernel
 * resolves it, and every directory it passes through must be owned by root or
 * by the running user and writable by nobody else (its group and others
 * included: think of /var/local, group staff, or a /var/lib a group was
 * given). A directory writable by others is accepted on the way only when it
 * is sticky (like /tmp): there nobody can rename or remove the entry of
 * another user. A symbolic link is followed only when it sits in a directory
 * already found trustworthy (so only a trusted user can have made it or can
 * change it), and its target is walked the same way. The last component has
 * the stricter rule of its kind (see checkLeaf): no exception for sticky.
 * This is OpenSSH's StrictModes, done for every directory up to `/` and for
 * every link on the way.
 *
 * Checked once per use, right before the use: nobody but root (or the user
 * running rcguard) can change a path that passed between the check and the
 * use, which is the point of the check.
 */
import {lstat, mkdir, readFile, readlink} from 'node:fs/promises'
import type {Stats} from 'node:fs'
import {join, resolve} from 'node:path'
import {escapeText} from '../text/escape.js'

/** Linux's limit (MAXSYMLINKS) on links followed while resolving one path. */
const MAX_LINKS = 40

export type Leaf = 'directory' | 'program'

export interface Untrusted {
  kind: 'untrusted'
  /** The path that fails: the leaf itself or a directory on the way to it (its real path, links resolved). */
  at: string
  /** True when `at` is a directory on the way, not the leaf. */
  ancestor: boolean
  /** What is wrong, e.g. "is owned by www-data (uid 33), not root". */
  reason: string
  /** A command that puts it right. */
  fix: string
}

export type Resolved =
  | {kind: 'ok'; real: string; stat: Stats}
  /** A component does not exist (and was not to be created): `at` is the first one missing. */
  | {kind: 'missing'; at: string}
  | Untrusted

const euid = (): number => process.geteuid?.() ?? -1

/** Files owned by root, or by the user running rcguard (tests, non-root dry runs), are trusted. */
export function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === euid()
}

/** A path or name for a message: one printable line. */
export function shown(text: string): string {
  return escapeText(text, {max: 300})
}

let passwd: Map<number, string> | null = null

/** The user name of a uid, from /etc/passwd (null when unknown). */
async function userName(uid: number): Promise<string | null> {
  if (passwd === null) {
    passwd = new Map()
    try {
      for (const line of (await readFile('/etc/passwd', 'utf8')).split('\n')) {
        const [name, , id] = line.split(':')
        if (name !== undefined && name !== '' && id !== undefined && /^\d+$/.test(id) && !passwd.has(Number(id))) passwd.set(Number(id), name)
      }
    } catch {
      // Names are only for the message.
    }
  }
  return passwd.get(uid) ?? null
}

export async function ownerText(uid: number): Promise<string> {
  const name = await userName(uid)
  return name === null ? `uid ${uid}` : `${shown(name)} (uid ${uid})`
}

const modeText = (st: Stats): string => `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}`

const who = (): string => (euid() === 0 ? 'root' : `root or uid ${euid()} (the user running rcguard)`)

function writableBy(st: Stats): string | null {
  if ((st.mode & 0o002) !== 0) return 'every user'
  if ((st.mode & 0o020) !== 0) return `its group (gid ${st.gid})`
  return null
}

/** A directory on the way: trusted owner, and writable by nobody else unless sticky. */
async function checkAncestor(path: string, st: Stats): Promise<Untrusted | null> {
  const bad = (reason: string, fix: string): Untrusted => ({kind: 'untrusted', at: path, ancestor: true, reason, fix})
  if (!trustedOwner(st.uid)) return bad(`is owned by ${await ownerText(st.uid)}, not ${who()}`, `chown root:root ${shown(path)}`)
  const writers = writableBy(st)
  if (writers !== null && (st.mode & 0o1000) === 0) return bad(`is writable by ${writers} (${modeText(st)}) and not sticky`, `chmod go-w ${shown(path)}`)
  return null
}

/**
 * The last component: a directory rcguard keeps its files in, or a program it
 * runs. Trusted owner, writable by nobody else (sticky does not help: anyone
 * could add files to the directory, or change the program).
 */
async function checkLeaf(path: string, st: Stats, leaf: Leaf): Promise<Untrusted | null> {
  const bad = (reason: string, fix: string): Untrusted => ({kind: 'untrusted', at: path, ancestor: false, reason, fix})
  const dirFix = `chown root:root ${shown(path)} && chmod 700 ${shown(path)}`
  const progFix = `chown root:root ${shown(path)} && chmod go-w ${shown(path)}`
  if (leaf === 'directory' && !st.isDirectory()) return bad('is not a directory', `put a directory there, or change the path`)
  if (leaf === 'program' && !st.isFile()) return bad('is not a regular file', 'name the program itself')
  if (!trustedOwner(st.uid)) return bad(`is owned by ${await ownerText(st.uid)}, not ${who()}`, leaf === 'directory' ? dirFix : progFix)
  const writers = writableBy(st)
  if (writers !== null) return bad(`is writable by ${writers} (${modeText(st)})`, leaf === 'directory' ? dirFix : progFix)
  return null
}

/**
 * Resolves `path` (relative to the current directory) as described above.
 * With `create`, missing directories are made (0700) on the way; the leaf must
 * then be a directory.
 */
export async function resolveTrusted(path: string, options: {leaf: Leaf; create?: boolean}): Promise<Resolved> {
  let todo = resolve(path).split('/').filter((c) => c !== '')
  let cur = '/'
  let curStat = await lstat('/')
  const rootBad = await checkAncestor('/', curStat)
  if (rootBad !== null) return rootBad
  let links = 0
  while (todo.length > 0) {
    const name = todo.shift() ?? ''
    if (name === '.') continue
    if (name === '..') {
      // cur is always a real path: its parent was checked on the way here.
      cur = cur === '/' ? '/' : cur.slice(0, cur.lastIndexOf('/')) || '/'
      curStat = await lstat(cur)
      continue
    }
    const next = join(cur, name)
    let st: Stats
    try {
      st = await lstat(next)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (options.create !== true) return {kind: 'missing', at: next}
      // In a directory found trustworthy: nobody else can have made it meanwhile but root.
      await mkdir(next, {mode: 0o700}).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e
      })
      st = await lstat(next)
    }
    if (st.isSymbolicLink()) {
      // In a sticky directory others can write (like /tmp), a link's owner can replace it at will: only root's
      // (or the running user's) are followed, as fs.protected_symlinks would have it.
      if (!trustedOwner(st.uid) && writableBy(curStat) !== null) {
        return {
          kind: 'untrusted',
          at: next,
          ancestor: todo.length > 0,
          reason: `is a symbolic link owned by ${await ownerText(st.uid)} in ${shown(cur)}, which ${writableBy(curStat)} can write: its owner can point it anywhere`,
          fix: `name the real path instead of ${shown(next)}`,
        }
      }
      if (++links > MAX_LINKS) return {kind: 'untrusted', at: next, ancestor: todo.length > 0, reason: 'leads through too many symbolic links', fix: 'point the path at the directory itself'}
      const target = await readlink(next)
      if (target.startsWith('/')) cur = '/'
      todo = [...target.split('/').filter((c) => c !== ''), ...todo]
      continue
    }
    if (todo.length > 0) {
      if (!st.isDirectory()) return {kind: 'untrusted', at: next, ancestor: true, reason: 'is not a directory', fix: 'correct the path'}
      const bad = await checkAncestor(next, st)
      if (bad !== null) return bad
    }
    cur = next
    curStat = st
  }
  const st = await lstat(cur)
  const bad = await checkLeaf(cur, st, options.leaf)
  return bad ?? {kind: 'ok', real: cur, stat: st}
}
