/**
 * The database lock: flock(2) on `<database>.lock`, taken by util-linux's
 * `flock` (Node has no flock) and held for as long as a `cat` it starts keeps
 * reading a pipe from this process.
 *
 * The kernel ends an flock the moment its holder is gone, so there is no
 * "stale" lock to guess at and take over: a run killed with SIGKILL closes its
 * end of the pipe, `cat` sees the end of its input and exits, and the lock is
 * free a few milliseconds later. Locks made of files or directories that
 * another process must judge stale and remove cannot be taken over safely:
 * two processes can judge the same lock stale, and the later one removes the
 * lock the earlier one has just made (proper-lockfile 4.1.2 did exactly this,
 * and a test proved the lost update).
 *
 * The lock file stays in place between runs (removing it would let a process
 * lock a file that is no longer the one others lock). It is created 0600; a
 * directory of that name, left by rcguard versions that used proper-lockfile,
 * is locked just the same.
 */
import {spawn} from 'node:child_process'
import {chmod, open, stat} from 'node:fs/promises'
import {BusyError, StoreError} from '../errors.js'

/** flock's exit code when the lock is held by another process (its --conflict-exit-code). */
const CONFLICT = 75

export interface HeldLock {
  readonly path: string
  /** True once the lock ended without release() (its helper was killed): nothing more may be written. */
  lost(): boolean
  release(): Promise<void>
}

export interface AcquireOptions {
  /** How long to wait for another holder; 0: fail at once. */
  waitMs: number
}

async function ensureLockFile(path: string): Promise<void> {
  try {
    const st = await stat(path)
    // Made by someone else (flock(1) by hand creates it 0644): private like the database.
    if (st.isFile() && (st.mode & 0o077) !== 0) await chmod(path, 0o600).catch(() => undefined)
    return
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // 'a': created when missing (0600), never truncated; a racing creator is harmless.
  const fh = await open(path, 'a', 0o600)
  await fh.close()
}

function withSystemDirs(path: string | undefined): string {
  const parts = (path ?? '').split(':').filter((p) => p !== '')
  for (const dir of ['/usr/bin', '/bin']) if (!parts.includes(dir)) parts.push(dir)
  return parts.join(':')
}

export async function acquireLock(path: string, options: AcquireOptions): Promise<HeldLock> {
  try {
    await ensureLockFile(path)
  } catch (err) {
    throw new StoreError(`cannot create the lock file ${path}: ${(err as Error).message}`)
  }
  const wait = options.waitMs > 0 ? ['--timeout', (options.waitMs / 1000).toFixed(3)] : ['--nonblock']
  const child = spawn('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), path, 'cat'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C meant for rcguard must not end the lock before rcguard.
    detached: true,
    // flock and cat are in /usr/bin or /bin on every system: found even with an empty or odd PATH.
    env: {...process.env, PATH: withSystemDirs(process.env.PATH), LC_ALL: 'C'},
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  let exited = false
  const exit = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      exited = true
      resolve(code)
    })
  })
  const started = new Promise<'locked' | 'ended'>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      exited = true
      reject(
        err.code === 'ENOENT'
          ? new StoreError('flock not found: rcguard locks its database with flock(1); install util-linux')
          : new StoreError(`cannot run flock for the lock ${path}: ${err.message}`),
      )
    })
    // cat runs only once flock holds the lock: the byte coming back says so.
    child.stdout.once('data', () => resolve('locked'))
    child.stdout.once('end', () => resolve('ended'))
  })
  child.stdin.on('error', () => undefined)
  child.stdin.write('\n')
  let outcome: 'locked' | 'ended'
  try {
    outcome = await started
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  if (outcome === 'ended') {
    const code = await exit
    if (code === CONFLICT) throw new BusyError(`another rcguard process holds the lock ${path}`)
    const why = stderr.trim().split('\n')[0] ?? ''
    throw new StoreError(`cannot lock database (flock ${path} exited ${code}${why === '' ? '' : `: ${why}`})`)
  }
  // Never keep rcguard alive for the lock's sake: at exit the pipe closes and the lock ends.
  const handles = [child, child.stdin, child.stdout, child.stderr] as unknown as {ref?: () => void; unref?: () => void}[]
  for (const h of handles) h.unref?.()
  let released = false
  return {
    path,
    lost: () => exited && !released,
    async release() {
      if (released) return
      released = true
      // Kept alive again until flock has gone, so the lock is surely free when this returns.
      for (const h of handles) h.ref?.()
      child.stdin.end()
      await exit
    },
  }
}
