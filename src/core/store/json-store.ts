/**
 * The JSON database: lowdb over an adapter that validates what it reads and
 * writes atomically (write-file-atomic: temp file, fsync, rename, mode 0600).
 * A file that cannot be parsed or validated is reported and never overwritten.
 * One lock (proper-lockfile, `<database>.lock`) guards every
 * read-modify-write, since cron runs can overlap with an admin's command.
 */
import {mkdir, readFile} from 'node:fs/promises'
import {dirname} from 'node:path'
import {Low, type Adapter} from 'lowdb'
import lockfile from 'proper-lockfile'
import writeFileAtomic from 'write-file-atomic'
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
      const why = text.trim() === '' ? 'it is empty' : `it is not valid JSON (${(err as Error).message})`
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
    try {
      await mkdir(dirname(this.path), {recursive: true, mode: 0o700})
      await writeFileAtomic(this.path, `${JSON.stringify(data)}\n`, {mode: 0o600, fsync: true})
    } catch (err) {
      throw new StoreError(
        `cannot write database ${this.path}: ${(err as Error).message}; the previous version is intact`,
      )
    }
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
