/**
 * The JSON database: lowdb over an adapter that validates what it reads and
 * what it writes, and writes atomically (temp file, every byte checked,
 * fsync, rename, mode 0600; write-file-atomic ignored a short write, so a
 * nearly full disk could leave a truncated database in place of the old one).
 * A file that cannot be parsed or validated is reported and never overwritten.
 * One lock (flock on `<database>.lock`, see lock.ts) guards every
 * read-modify-write, since cron runs can overlap with an admin's command.
 */
import {randomBytes} from 'node:crypto'
import {mkdir, open, readdir, readFile, rename, unlink, type FileHandle} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {Low, type Adapter} from 'lowdb'
import {BusyError, StoreError} from '../errors.js'
import {dataSchema, emptyData, SCHEMA_VERSION, type StoreData} from './schema.js'
import {acquireLock, type HeldLock} from './lock.js'
import {upgrade} from './migrate.js'
import {diagnose, issueText, type Diagnosis} from './diagnose.js'
import type {LockOptions, Store} from './store.js'

/** How long an admin command waits for the lock before giving up with "busy". */
const ADMIN_WAIT_MS = 4_000

const RECOVERY = 'move it aside and run "rcguard flush --yes" to start afresh (see rcguard(8), RECOVERY)'

/** A database whose faults lie in records that `rcguard flush --invalid` can remove: what they are, and the bytes read. */
export class InvalidStoreError extends StoreError {
  constructor(
    message: string,
    readonly diagnosis: Diagnosis,
    readonly bytes: Buffer,
  ) {
    super(message)
    this.name = 'StoreError'
  }
}

class ValidatingJsonAdapter implements Adapter<StoreData> {
  /** The bytes of an older-schema file last read, kept beside it before the first write migrates it. */
  private original: {version: number; bytes: Buffer} | null = null

  constructor(private readonly path: string) {}

  async read(): Promise<StoreData | null> {
    this.original = null
    let bytes: Buffer
    try {
      bytes = await readFile(this.path)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ENOENT') return null
      if (e.code === 'EISDIR') throw new StoreError(`database ${this.path} is a directory, not a file`)
      throw new StoreError(`cannot read database ${this.path}: ${e.message}`)
    }
    const text = bytes.toString('utf8')
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
    // An older file is migrated in memory on every read; the file itself changes only at the next write.
    const upgraded = upgrade(raw)
    const parsed = dataSchema.safeParse(upgraded.data)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const where = issue === undefined ? '' : issueText(issue)
      const migrated = upgraded.steps.length > 0 ? ` (after migrating it from schema version ${upgraded.from})` : ''
      const diagnosis = diagnose(upgraded.data)
      if (diagnosis.repaired === null || diagnosis.records.length === 0) {
        throw new StoreError(`database ${this.path} fails validation at ${where}${migrated}; it was left untouched: ${RECOVERY}`)
      }
      const n = diagnosis.records.length
      const first = diagnosis.records[0]
      const which = n === 1 ? `removes ${first?.what ?? 'it'} and keeps the rest` : `lists the ${n} invalid records and removes them, keeping the rest`
      throw new InvalidStoreError(
        `database ${this.path} fails validation at ${where}${migrated}; it was left untouched: "rcguard flush --invalid" ${which} and a copy of the file (see rcguard(8), RECOVERY)`,
        diagnosis,
        bytes,
      )
    }
    if (upgraded.steps.length > 0) this.original = {version: upgraded.from, bytes}
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
    if (this.original !== null) {
      const keep = `${this.path}.v${this.original.version}`
      try {
        await keepOnce(keep, this.original.bytes)
      } catch (err) {
        throw new StoreError(
          `cannot keep the schema ${this.original.version} database as ${keep} before migrating it: ${(err as Error).message}; the database was left untouched`,
        )
      }
      this.original = null
    }
    try {
      await mkdir(dirname(this.path), {recursive: true, mode: 0o700})
      await atomicWrite(this.path, `${JSON.stringify(data)}\n`)
    } catch (err) {
      throw new StoreError(`cannot write database ${this.path}: ${(err as Error).message}; the previous version is intact`)
    }
  }
}

/** Writes a new file (0600, flushed); an existing file of that name is kept as it is. */
async function keepOnce(path: string, bytes: Buffer): Promise<void> {
  let fh: FileHandle
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return
    throw err
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
}

/** Creates a file that must not exist yet (O_EXCL: a link in its place is not followed), 0600, flushed. Throws EEXIST. */
async function writeNew(path: string, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'wx', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => undefined)
    await unlink(path).catch(() => undefined)
    throw err
  }
  await fh.close()
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
  /** The lock while withLock runs. */
  private held: HeldLock | undefined

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
    if (this.held?.lost() === true) {
      throw new StoreError(`the lock ${this.held.path} ended while this run held it (its flock process was killed); the database was not written`)
    }
    this.db.data = data
    await this.db.write()
  }

  async keepCopy(bytes: Buffer, tag: string): Promise<string> {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
    for (let n = 1; n <= 100; n++) {
      const name = `${this.location}.${tag}-${stamp}${n === 1 ? '' : `.${n}`}`
      try {
        await writeNew(name, bytes)
        return name
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
        throw new StoreError(`cannot keep a copy of database ${this.location} as ${name}: ${(err as Error).message}; the database was left untouched`)
      }
    }
    throw new StoreError(`cannot keep a copy of database ${this.location}: too many copies named ${this.location}.${tag}-${stamp}; the database was left untouched`)
  }

  async withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T> {
    try {
      await mkdir(dirname(this.location), {recursive: true, mode: 0o700})
    } catch (err) {
      throw new StoreError(`cannot create the database directory ${dirname(this.location)}: ${(err as Error).message}`)
    }
    let lock: HeldLock
    try {
      lock = await acquireLock(`${this.location}.lock`, {waitMs: options.wait ? ADMIN_WAIT_MS : 0})
    } catch (err) {
      if (err instanceof BusyError && options.wait) throw new BusyError(`${err.message}; try again in a moment`)
      throw err
    }
    this.held = lock
    try {
      return await fn()
    } finally {
      this.held = undefined
      await lock.release().catch(() => undefined)
    }
  }
}
