/**
 * The JSON database: lowdb over an adapter that validates what it reads and
 * what it writes, and writes atomically (temp file, every byte checked,
 * fsync, rename, mode 0600; write-file-atomic ignored a short write, so a
 * nearly full disk could leave a truncated database in place of the old one).
 * A file that cannot be parsed or validated is reported and never overwritten.
 * One lock (flock on `<database>.lock`, see lock.ts) guards every
 * read-modify-write, since cron runs can overlap with an admin's command.
 *
 * rcguard runs as root: before anything is read or written, the database's
 * directory must be one nobody else can write (../config/trust.ts), and every
 * file in it is opened without following links (safe-files.ts). The files
 * are reached through the directory's real path, found while checking it, so
 * a link on the way cannot be changed to point elsewhere after the check.
 */
import {basename, dirname, join} from 'node:path'
import {Low, type Adapter} from 'lowdb'
import {BusyError, errorMessage, StoreError} from '../errors.js'
import {escapeText} from '../text/escape.js'
import {resolveTrusted, shown, type Untrusted} from '../config/trust.js'
import {emptyData, SCHEMA_VERSION, type StoreData} from './schema.js'
import {decodeEntries, encodeChunks, validateData} from './codec.js'
import {parseDatabaseJson} from './read-json.js'
import {acquireLock, type HeldLock} from './lock.js'
import {upgrade} from './migrate.js'
import {atomicWrite, readOwnFile, UnsafeFileError, writeOnce} from './safe-files.js'
import {diagnose, issueText, type Diagnosis} from './diagnose.js'
import type {LockOptions, Store} from './store.js'

/** How long an admin command waits for the lock before giving up with "busy". */
const ADMIN_WAIT_MS = 4_000

const RECOVERY = 'move it aside and run "rcguard flush --yes" to start afresh (see rcguard(8), RECOVERY)'

/** The one line for a database directory rcguard will not use. */
function untrustedDirectory(dir: string, bad: Untrusted): string {
  const name = shown(dir)
  const fix = `fix: ${bad.fix}`
  if (bad.ancestor) {
    return `database directory ${name} is inside ${shown(bad.at)}, which ${bad.reason}: whoever can write there could replace the database directory; nothing was read or written; ${fix}, or move the database elsewhere (database: in the configuration)`
  }
  const really = bad.at === dir ? '' : ` (${shown(bad.at)})`
  return `database directory ${name}${really} ${bad.reason}: whoever can write there could make rcguard overwrite other files through links, or rewrite the database; nothing was read or written; ${fix}`
}

/**
 * The database directory's real path, once it is found trustworthy; null when
 * it does not exist (and `create` is false). With `create`, it is made (0700)
 * when missing. Throws StoreError for a directory rcguard must not use.
 */
export async function databaseDirectory(database: string, create: boolean): Promise<string | null> {
  const dir = dirname(database)
  let found
  try {
    found = await resolveTrusted(dir, {leaf: 'directory', create})
  } catch (err) {
    throw new StoreError(`cannot ${create ? 'create' : 'check'} the database directory ${shown(dir)}: ${errorMessage(err)}`)
  }
  if (found.kind === 'missing') return null
  if (found.kind === 'untrusted') throw new StoreError(untrustedDirectory(dir, found))
  return found.real
}

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
  get migrating(): boolean {
    return this.original !== null
  }

  private original: {version: number; bytes: Buffer} | null = null

  constructor(private readonly path: string) {}

  async read(): Promise<StoreData | null> {
    this.original = null
    const dir = await databaseDirectory(this.path, false)
    if (dir === null) return null
    let bytes: Buffer | null
    try {
      bytes = await readOwnFile(join(dir, basename(this.path)))
    } catch (err) {
      if (err instanceof UnsafeFileError) {
        if (/^is a directory/.test(err.reason)) throw new StoreError(`database ${this.path} is a directory, not a file`)
        throw new StoreError(`database ${this.path} ${err.reason}; it was left untouched: ${RECOVERY}`)
      }
      throw new StoreError(`cannot read database ${this.path}: ${errorMessage(err)}`)
    }
    if (bytes === null) return null
    let raw: unknown
    try {
      // A large file is parsed an entry at a time, never as one string (read-json.ts).
      raw = parseDatabaseJson(bytes)
    } catch (err) {
      if (err instanceof RangeError) {
        // Past V8's longest string without the layout read-json.ts splits: only a hand-made file is so.
        throw new StoreError(`database ${this.path} is too large to read (${bytes.length} bytes); it was left untouched: ${RECOVERY}`)
      }
      // JSON.parse quotes the file's bytes: keep the message one printable line.
      const detail = escapeText((err as Error).message, {max: 120})
      const empty = bytes.length <= 1 << 20 && bytes.toString('latin1').trim() === ''
      const why = empty ? 'it is empty' : `it is not valid JSON (${detail})`
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
    // The document as parsed is no longer needed once migrated (a schema 3 file can be hundreds of megabytes).
    raw = null
    // Schema 4 leaves default fields out of the file (codec.ts): validation and diagnosis see every entry whole.
    const doc = decodeEntries(upgraded.data)
    const parsed = validateData(doc)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const where = issue === undefined ? '' : issueText(issue)
      const migrated = upgraded.steps.length > 0 ? ` (after migrating it from schema version ${upgraded.from})` : ''
      const diagnosis = diagnose(doc)
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
    const valid = validateData(data)
    if (!valid.success) {
      const issue = valid.error.issues[0]
      throw new StoreError(
        `refusing to write database ${this.path}: the data fails validation at ${issue?.path.map(String).join('.') ?? ''} (${issue?.message ?? ''}); the previous version is intact`,
      )
    }
    const dir = await databaseDirectory(this.path, true)
    if (dir === null) throw new StoreError(`cannot create the database directory ${shown(dirname(this.path))}`)
    const name = basename(this.path)
    if (this.original !== null) {
      const keep = `${this.path}.v${this.original.version}`
      try {
        await writeOnce(join(dir, `${name}.v${this.original.version}`), this.original.bytes)
      } catch (err) {
        const why = err instanceof UnsafeFileError ? `it ${err.reason}; remove it (rm ${shown(keep)}) and run rcguard again` : errorMessage(err)
        throw new StoreError(`cannot keep the schema ${this.original.version} database as ${keep} before migrating it: ${why}; the database was left untouched`)
      }
      this.original = null
    }
    try {
      await atomicWrite(join(dir, name), encodeChunks(valid.data))
    } catch (err) {
      throw new StoreError(`cannot write database ${this.path}: ${errorMessage(err)}; the previous version is intact`)
    }
  }
}

export class JsonStore implements Store {
  readonly location: string
  private readonly db: Low<StoreData>
  private readonly adapter: ValidatingJsonAdapter

  constructor(path: string) {
    this.location = path
    this.adapter = new ValidatingJsonAdapter(path)
    this.db = new Low(this.adapter, emptyData())
  }

  get migrating(): boolean {
    return this.adapter.migrating
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

  async keepCopy(bytes: Buffer, tag: string): Promise<string> {
    const dir = await databaseDirectory(this.location, false)
    if (dir === null) throw new StoreError(`database directory ${shown(dirname(this.location))} is missing: there is no database to keep a copy of`)
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
    for (let n = 1; n <= 100; n++) {
      const name = `${this.location}.${tag}-${stamp}${n === 1 ? '' : `.${n}`}`
      try {
        if ((await writeOnce(join(dir, basename(name)), bytes)) === 'written') return name
      } catch (err) {
        const why = err instanceof UnsafeFileError ? `it ${err.reason}` : errorMessage(err)
        throw new StoreError(`cannot keep a copy of database ${this.location} as ${name}: ${why}; the database was left untouched`)
      }
    }
    throw new StoreError(`cannot keep a copy of database ${this.location}: too many copies named ${this.location}.${tag}-${stamp}; the database was left untouched`)
  }

  async withLock<T>(options: LockOptions, fn: () => Promise<T>): Promise<T> {
    const dir = await databaseDirectory(this.location, true)
    if (dir === null) throw new StoreError(`cannot create the database directory ${shown(dirname(this.location))}`)
    let lock: HeldLock
    try {
      lock = await acquireLock(join(dir, `${basename(this.location)}.lock`), {waitMs: options.wait ? ADMIN_WAIT_MS : 0})
    } catch (err) {
      if (err instanceof BusyError && options.wait) throw new BusyError(`${err.message}; try again in a moment`)
      throw err
    }
    try {
      return await fn()
    } finally {
      await lock.release().catch(() => undefined)
    }
  }
}
