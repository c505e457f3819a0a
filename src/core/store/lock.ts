/**
 * The database lock: flock(2) on `<database>.lock`, taken by util-linux's
 * `flock` (Node has no flock) on a descriptor this process opened and keeps
 * open: `flock NUMBER` locks the open file it inherits as that descriptor
 * and exits, and the lock belongs to the open file, which stays open here
 * until release() (or until this process ends, however it ends).
 *
 * The kernel ends an flock the moment its holder is gone, so there is no
 * "stale" lock to guess at and take over: a run killed with SIGKILL has its
 * files closed by the kernel, and the lock is free at once. Locks made of
 * files or directories that another process must judge stale and remove
 * cannot be taken over safely: two processes can judge the same lock stale,
 * and the later one removes the lock the earlier one has just made
 * (proper-lockfile 4.1.2 did exactly this, and a test proved the lost update).
 *
 * The lock file is opened by rcguard itself, never through a link
 * (O_NOFOLLOW), and created with O_EXCL (0600) when missing; once open it must
 * be a regular file of root's (or the running user's) with one link, and a
 * mode that lets others in is put right with fchmod on the open file, never
 * with chmod on a name. flock(1) is handed the open descriptor, not the name,
 * so it locks exactly the file that was checked. A planted link or another
 * user's file is refused with StoreError.
 *
 * The lock file stays in place between runs (removing it would let a process
 * lock a file that is no longer the one others lock). A directory of that
 * name, left by rcguard versions that used proper-lockfile, is locked just
 * the same.
 */
import {spawn} from 'node:child_process'
import {constants} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {BusyError, errorMessage, StoreError} from '../errors.js'
import {shown} from '../config/trust.js'
import {openExisting, UnsafeFileError} from './safe-files.js'

/** flock's exit code when the lock is held by another process (its --conflict-exit-code). */
const CONFLICT = 75

const {O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW} = constants

export interface HeldLock {
  readonly path: string
  release(): Promise<void>
}

export interface AcquireOptions {
  /** How long to wait for another holder; 0: fail at once. */
  waitMs: number
}

/** Opens the lock file as described above, creating it when missing. */
async function openLockFile(path: string): Promise<FileHandle> {
  for (let attempt = 0; ; attempt++) {
    const existing = await openExisting(path, {oneLink: true, directoryOk: true})
    if (existing !== null) {
      try {
        const st = await existing.stat()
        // Made by someone else (flock(1) by hand creates it 0644): private like the database.
        if (st.isFile() && (st.mode & 0o077) !== 0) await existing.chmod(0o600)
      } catch (err) {
        await existing.close().catch(() => undefined)
        throw err
      }
      return existing
    }
    try {
      return await open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
    } catch (err) {
      // Made meanwhile (by another rcguard run, or planted): open what is there, checked as above.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 3) continue
      throw err
    }
  }
}

function withSystemDirs(path: string | undefined): string {
  const parts = (path ?? '').split(':').filter((p) => p !== '')
  for (const dir of ['/usr/bin', '/bin']) if (!parts.includes(dir)) parts.push(dir)
  return parts.join(':')
}

/** Runs `flock` on the open lock file (its descriptor 3); resolves with its exit code. */
async function runFlock(fh: FileHandle, path: string, waitMs: number): Promise<{code: number | null; stderr: string}> {
  const wait = waitMs > 0 ? ['--timeout', (waitMs / 1000).toFixed(3)] : ['--nonblock']
  const child = spawn('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), '3'], {
    stdio: ['ignore', 'ignore', 'pipe', fh.fd],
    // Its own process group: a Ctrl-C meant for rcguard goes to rcguard alone.
    detached: true,
    // flock is in /usr/bin or /bin on every system: found even with an empty or odd PATH.
    env: {...process.env, PATH: withSystemDirs(process.env.PATH), LC_ALL: 'C'},
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'ENOENT'
          ? new StoreError('flock not found: rcguard locks its database with flock(1); install util-linux')
          : new StoreError(`cannot run flock for the lock ${shown(path)}: ${err.message}`),
      )
    })
    child.on('close', (code) => resolve({code, stderr}))
  })
}

export async function acquireLock(path: string, options: AcquireOptions): Promise<HeldLock> {
  let fh: FileHandle
  try {
    fh = await openLockFile(path)
  } catch (err) {
    if (err instanceof UnsafeFileError) {
      throw new StoreError(`the lock file ${shown(path)} ${err.reason}: someone else made it; nothing was read or written; fix: rm ${shown(path)} (rcguard makes it anew)`)
    }
    throw new StoreError(`cannot create the lock file ${shown(path)}: ${errorMessage(err)}`)
  }
  let result: {code: number | null; stderr: string}
  try {
    result = await runFlock(fh, path, options.waitMs)
  } catch (err) {
    await fh.close().catch(() => undefined)
    throw err
  }
  if (result.code !== 0) {
    await fh.close().catch(() => undefined)
    if (result.code === CONFLICT) throw new BusyError(`another rcguard process holds the lock ${path}`)
    const why = result.stderr.trim().split('\n')[0] ?? ''
    throw new StoreError(`cannot lock database (flock ${path} exited ${result.code}${why === '' ? '' : `: ${why}`})`)
  }
  let released = false
  return {
    path,
    async release() {
      if (released) return
      released = true
      // Closing the only open file of the lock ends it.
      await fh.close()
    },
  }
}
