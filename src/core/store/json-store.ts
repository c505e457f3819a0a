/**
 * The JSON database: lowdb over an adapter that validates what it reads and
 * what it writes, and writes atomically (temp file, every byte checked,
 * fsync, rename, mode 0600; write-file-atomic ignored a short write, so a
 * nearly full disk could leave a truncated database in place of the old one).
 * A file that cannot be parsed or validated is reported and never overwritten.
 * One lock (proper-lockfile, `<database>.lock`) guards every
 * read-modify-write, since cron runs can overlap with an admin's command.
 */
import {randomBytes} from 'node:crypto'
import {mkdir, open, readdir, readFile, rename, unlink, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {Low, type Adapter} from 'lowdb'
import lockfile from 'proper-lockfile'
import {BusyError, StoreError} from '../errors.js'
import {dataSchema, emptyData, SCHEMA_VERSION, type StoreData} from './schema.js'
import type {LockOptions, Store} from './store.js'

const RECOVERY = 'move it aside and run "rcguard flush --yes" to start afresh (see rcguard(8), RECOVERY)'

class ValidatingJsonAdapter implements Adapter<StoreData> {
  constructor(private readonly path: string) {}

  async read(): Promise<StoreData | null> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ENOENT') return null
      if (e.code === 'EISDIR') throw new StoreError(`database ${this.path} is a directory, not a file`)
      throw new StoreError(`cannot read database ${this.path}: ${e.message}`)
    }
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (err) {
      // JSON.parse quotes the file's bytes: keep the message one printable line.
      // eslint-disable-next-line no-control-regex
      const detail = (err as Error).message.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 120)
      const why = text.trim() === '' ? 'it is empty' : `it is not valid JSON (${detail})`
      throw new StoreError(`database ${this.path} is corrupt: ${why}; it was left untouched: ${RECOVERY}`)
    }
    const version = (raw as {schemaVersion?: unknown} | null)?.schemaVersion
    if (typeof version === 'number' && version > SCHEMA_VERSION) {
      throw new StoreError(
        `database ${this.path} has schema version ${version}, newer than this rcguard understands (${SCHEMA_VERSION}): upgrade rcguard`,
      )
    }
    const parsed = dataSchema.safeParse(raw)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const where = issue === undefined ? '' : `${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`
      throw new StoreError(`database ${this.path} fails validation at ${where}; it was left untouched: ${RECOVERY}`)
    }
    return parsed.data
  }

  async write(data: StoreData): Promise<void> {
    // Never write what could not be read back.
    const valid = dataSchema.safeParse(data)
    if (!valid.success) {
      const issue = valid.error.issues[0]
      throw new StoreError(
        `refusing to write database ${this.path}: the data fails validation at ${issue?.path.map(String).join('.') ?? ''} (${issue?.message ?? ''}); the previous version is intact`,
      )
    }
    try {
      await mkdir(dirname(this.path), {recursive: true, mode: 0o700})
      await atomicWrite(this.path, `${JSON.stringify(data)}\n`)
    } catch (err) {
      throw new StoreError(`cannot write database ${this.path}: ${(err as Error).message}; the previous version is intact`)
    }
  }
}

/** Temporary files left by a writer that was killed (its process is gone). */
async function removeOrphans(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`
  let names: string[]
  try {
    names = await readdir(dirname(path))
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
    if (!alive || pid === process.pid) await unlink(join(dirname(path), name)).catch(() => undefined)
  }
}

/**
 * Replaces a file whole: a new file beside it (0600), every byte written
 * (writeFile loops over short writes and reports ENOSPC), its length checked,
 * flushed to disk, renamed over the old one, and the directory flushed so the
 * rename survives a power cut. On any failure the temporary file goes and the
 * old file is untouched.
 */
export async function atomicWrite(path: string, text: string): Promise<void> {
  await removeOrphans(path)
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const bytes = Buffer.from(text)
  let fh: FileHandle | undefined
  try {
    fh = await open(tmp, 'wx', 0o600)
    await fh.writeFile(bytes)
    await fh.sync()
    const {size} = await fh.stat()
    if (size !== bytes.length) throw new Error(`wrote ${size} of ${bytes.length} bytes (is the disk full?)`)
    await fh.close()
    fh = undefined
    await rename(tmp, path)
  } catch (err) {
    await fh?.close().catch(() => undefined)
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  const dir = await open(dirname(path), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

export class JsonStore implements Store {
  readonly location: string
  private readonly db: Low<StoreData>

  constructor(path: string) {
    this.location = path
    this.db = new Low(new ValidatingJsonAdapter(path), emptyData())
  }

  async read(): Promise<StoreData> {
    this.db.data = emptyData()
    await this.db.read()
    return this.db.data
  }

  async write(data: StoreData): Promise<void> {
    this.db.data = data
    await this.db.write()
  }

  async withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T> {
    try {
      await mkdir(dirname(this.location), {recursive: true, mode: 0o700})
    } catch (err) {
      throw new StoreError(`cannot create the database directory ${dirname(this.location)}: ${(err as Error).message}`)
    }
    let release: () => Promise<void>
    try {
      release = await lockfile.lock(this.location, {
        lockfilePath: `${this.location}.lock`,
        realpath: false,
        stale: 30_000,
        update: 5_000,
        retries: options.wait ? {retries: 10, factor: 1.3, minTimeout: 100, maxTimeout: 1_000} : 0,
        onCompromised: (err) => {
          process.emitWarning(`rcguard lock ${this.location}.lock was compromised: ${err.message}`)
        },
      })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ELOCKED') {
        throw new BusyError(
          `another rcguard process holds the lock ${this.location}.lock${options.wait ? '; try again in a moment' : ''}`,
        )
      }
      throw new StoreError(`cannot lock database ${this.location}: ${e.message}`)
    }
    try {
      return await fn()
    } finally {
      await release().catch(() => undefined)
    }
  }
}
