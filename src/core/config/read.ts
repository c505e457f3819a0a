/**
 * Reading the configuration file's bytes, whatever the path names: it is
 * opened without blocking (a FIFO or a terminal would otherwise wait for a
 * writer forever), checked to be a regular file after the open (what was
 * opened is what is judged), and read up to a bound, so a wrong path never
 * hangs a cron run or fills its memory. The text must be UTF-8 without the
 * control characters YAML forbids.
 */
import {constants, type Stats} from 'node:fs'
import {open, stat, type FileHandle} from 'node:fs/promises'
import {ConfigError} from '../errors.js'

/** The largest configuration file read: far above any real one (a few KiB), far below what would strain memory. */
export const MAX_CONFIG_BYTES = 256 * 1024

/** What a file that is not a regular file is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO (named pipe)'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a regular file'
}

function notRegular(path: string, st: Stats): ConfigError {
  if (st.isDirectory()) return new ConfigError(`configuration file ${path} is a directory`)
  return new ConfigError(`configuration file ${path} is ${fileKind(st)}, not a regular file: name the configuration file itself`)
}

/**
 * The file's text, or null when it does not exist (the caller decides whether
 * that is an error). Throws ConfigError for anything that is not a readable
 * regular UTF-8 file of at most MAX_CONFIG_BYTES.
 */
export async function readConfigText(path: string): Promise<string | null> {
  let fh: FileHandle
  try {
    // O_NONBLOCK: opening a FIFO for reading returns at once; O_NOCTTY: a terminal never becomes ours.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return null
    // A socket (ENXIO) or a device without a driver cannot be opened: say what the path is, if it can be told.
    const st = await stat(path).catch(() => null)
    if (st !== null && !st.isFile()) throw notRegular(path, st)
    throw new ConfigError(`cannot read configuration file ${path}: ${e.message}`)
  }
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw notRegular(path, st)
    if (st.size > MAX_CONFIG_BYTES) throw tooLarge(path, st.size)
    // Read one byte more than allowed: a file that grows while it is read (or reports no size, as /proc does) is caught too.
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1)
    let length = 0
    for (;;) {
      const {bytesRead} = await fh.read(buf, length, buf.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length > MAX_CONFIG_BYTES) throw tooLarge(path, length, true)
    }
    return decode(path, buf.subarray(0, length))
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const e = err as NodeJS.ErrnoException
    if (e.code === 'EISDIR') throw new ConfigError(`configuration file ${path} is a directory`)
    throw new ConfigError(`cannot read configuration file ${path}: ${e.message}`)
  } finally {
    await fh.close().catch(() => undefined)
  }
}

function tooLarge(path: string, size: number, growing = false): ConfigError {
  const bytes = growing ? '' : ` (${size} bytes)`
  return new ConfigError(
    `configuration file ${path} is larger than ${MAX_CONFIG_BYTES / 1024} KiB${bytes}, the most a configuration file may be: is it the right file?`,
  )
}

/** C0 controls but TAB, LF and CR; DEL; C1 controls but NEL: YAML allows them only escaped in double quotes. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u0084\u0086-\u009f]/

function decode(path: string, bytes: Buffer): string {
  let text: string
  try {
    // A byte-order mark is dropped, as YAML allows one.
    text = new TextDecoder('utf-8', {fatal: true}).decode(bytes)
  } catch {
    throw new ConfigError(`configuration file ${path} is not UTF-8 text: is it the right file?`)
  }
  const bad = FORBIDDEN.exec(text)
  if (bad !== null) {
    const line = text.slice(0, bad.index).split('\n').length
    const code = `U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`
    throw new ConfigError(
      `configuration file ${path} holds the control character ${code} at line ${line}, which YAML does not allow: is it the right file?`,
    )
  }
  return text
}
