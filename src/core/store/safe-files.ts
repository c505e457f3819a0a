/**
 * The files rcguard keeps beside its database, opened so that nothing
 * planted in the directory can steer root elsewhere: never through a symbolic
 * link (O_NOFOLLOW), a new file only as a new file (O_EXCL: a name already
 * taken, by a link or anything else, is never written through), and every
 * file checked once open (fstat, so on the very file opened, not on a name
 * that may have changed since): a regular file owned by root or by the user
 * running rcguard, with one link where rcguard changes it in place.
 *
 * These checks are the second line: the directory itself is checked first
 * (see ../config/trust.ts and JsonStore), so that only root can plant
 * anything there. They matter for what was planted before the directory was
 * put right, and for a directory someone made trustworthy by hand.
 */
import {randomBytes} from 'node:crypto'
import {constants, type Stats} from 'node:fs'
import {lstat, open, readdir, readlink, rename, unlink, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {ownerText, shown, trustedOwner} from '../config/trust.js'

const {O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY} = constants

/** A file that is not what rcguard would have made: a link, a FIFO, another user's file. */
export class UnsafeFileError extends Error {
  constructor(
    readonly path: string,
    /** e.g. "is a symbolic link (to /etc/shadow)". */
    readonly reason: string,
  ) {
    super(`${shown(path)} ${reason}`)
    this.name = 'UnsafeFileError'
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device'
  if (st.isSymbolicLink()) return 'a symbolic link'
  return 'not a regular file'
}

/** Why an open file may not be used, or null. */
export async function fileProblem(st: Stats, options: {oneLink?: boolean; directoryOk?: boolean} = {}): Promise<string | null> {
  if (!st.isFile() && !(options.directoryOk === true && st.isDirectory())) return `is ${kindOf(st)}, not a regular file`
  if (!trustedOwner(st.uid)) return `is owned by ${await ownerText(st.uid)}, not root`
  if (options.oneLink === true && st.isFile() && st.nlink !== 1) return `has ${st.nlink} hard links (it may be another file too)`
  return null
}

/** The reason for a name that O_NOFOLLOW refused (ELOOP): it is a link. */
async function linkReason(path: string): Promise<string> {
  const target = await readlink(path).catch(() => null)
  return `is a symbolic link${target === null ? '' : ` (to ${shown(target)})`}; rcguard never follows links there`
}

/**
 * Opens an existing file for reading, never through a link, never blocking
 * (a FIFO is refused, not waited on), and checks what was opened. Null when
 * there is no such file.
 */
export async function openExisting(path: string, options: {oneLink?: boolean; directoryOk?: boolean} = {}): Promise<FileHandle | null> {
  let fh: FileHandle
  try {
    fh = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return null
    if (e.code === 'ELOOP') throw new UnsafeFileError(path, await linkReason(path))
    throw err
  }
  try {
    const problem = await fileProblem(await fh.stat(), options)
    if (problem !== null) throw new UnsafeFileError(path, problem)
  } catch (err) {
    await fh.close().catch(() => undefined)
    throw err
  }
  return fh
}

/** The whole of an existing file (see openExisting), or null when there is none. */
export async function readOwnFile(path: string): Promise<Buffer | null> {
  const fh = await openExisting(path)
  if (fh === null) return null
  try {
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}

/** Makes a new file (0600) and never opens an existing one, a link included: EEXIST when the name is taken. */
export async function createExclusive(path: string): Promise<FileHandle> {
  const fh = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
  try {
    const problem = await fileProblem(await fh.stat(), {oneLink: true})
    if (problem !== null) throw new UnsafeFileError(path, problem)
  } catch (err) {
    await fh.close().catch(() => undefined)
    throw err
  }
  return fh
}

/**
 * Writes a new file (0600, flushed) once: an existing regular file of a
 * trusted owner by that name is kept as it is ('kept'); a link or anything
 * else there is refused (UnsafeFileError), since what it holds is not the copy
 * it claims to be.
 */
export async function writeOnce(path: string, bytes: Buffer): Promise<'written' | 'kept'> {
  let fh: FileHandle
  try {
    fh = await createExclusive(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const st = await lstat(path)
    if (st.isSymbolicLink()) throw new UnsafeFileError(path, await linkReason(path))
    const problem = await fileProblem(st)
    if (problem !== null) throw new UnsafeFileError(path, problem)
    return 'kept'
  }
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => undefined)
    await unlink(path).catch(() => undefined)
    throw err
  }
  await fh.close()
  return 'written'
}

/**
 * Temporary files left by a writer that was killed (its process is gone).
 * Only regular files of a trusted owner are removed; anything else of such a
 * name is not rcguard's and is left alone.
 */
async function removeOrphans(path: string): Promise<void> {
  const dir = dirname(path)
  const prefix = `.${basename(path)}.`
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length)) : null
    if (m === null) continue
    const pid = Number(m[1])
    let alive = true
    try {
      process.kill(pid, 0)
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM'
    }
    if (alive && pid !== process.pid) continue
    const file = join(dir, name)
    const st = await lstat(file).catch(() => null)
    // unlink never follows a link; still, what is not rcguard's own file is not rcguard's to remove.
    if (st !== null && (await fileProblem(st)) === null) await unlink(file).catch(() => undefined)
  }
}

/**
 * Replaces a file whole: a new file beside it (0600, O_EXCL|O_NOFOLLOW), every
 * byte written (writeFile loops over short writes and reports ENOSPC), its
 * length checked, flushed to disk, renamed over the old one (rename replaces
 * a link of that name, never what it points to), and the directory flushed
 * so the rename survives a power cut (`mode`: another mode than 0600). On any failure the temporary file goes
 * and the old file is untouched. The directory must be one rcguard trusts.
 */
export async function atomicWrite(path: string, text: string | Iterable<string>, options: {mode?: number} = {}): Promise<void> {
  await removeOrphans(path)
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  // Pieces are written one after another: the whole text need not fit in one string.
  const parts = typeof text === 'string' ? [text] : text
  let length = 0
  let fh: FileHandle | undefined
  let made = false
  try {
    fh = await createExclusive(tmp)
    made = true
    // A file others must read (the metrics textfile, for node_exporter): widened before anything is in it.
    if (options.mode !== undefined) await fh.chmod(options.mode)
    for (const part of parts) {
      const bytes = Buffer.from(part)
      length += bytes.length
      await fh.writeFile(bytes)
    }
    await fh.sync()
    const {size} = await fh.stat()
    if (size !== length) throw new Error(`wrote ${size} of ${length} bytes (is the disk full?)`)
    await fh.close()
    fh = undefined
    await rename(tmp, path)
  } catch (err) {
    await fh?.close().catch(() => undefined)
    // Only a file this call made is removed: never a name someone else took first.
    if (made) await unlink(tmp).catch(() => undefined)
    throw err
  }
  const dir = await open(dirname(path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
