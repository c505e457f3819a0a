/**
 * The programs a notification runs as root (notify.command's program and the
 * sendmail binary) are trusted like rcguard's own files: the program, and
 * every directory on the way to it, must be owned by root (or by the user
 * running rcguard) and writable by nobody else (see ../config/trust.ts).
 * Anyone who could change such a program could run code as root at the next
 * block. One that fails is refused with a warning and not run; the rest of
 * the run goes on.
 */
import {constants} from 'node:fs'
import {access, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {resolveTrusted, shown} from '../config/trust.js'
import {searchPath} from '../firewall/runner.js'

/** Where a program named without a `/` is found, as execvp would find it on rcguard's PATH; null when nowhere. */
async function onPath(name: string): Promise<string | null> {
  for (const dir of searchPath(process.env.PATH).split(':')) {
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      if ((await stat(candidate)).isFile()) return candidate
    } catch {
      // Not here.
    }
  }
  return null
}

/**
 * The path to run for `program`, or why it must not run. A program that is
 * not there is left for the run to report as missing, as before.
 */
export async function programToRun(program: string): Promise<{path: string} | {refused: string}> {
  const path = program.includes('/') ? program : await onPath(program)
  if (path === null) return {path: program}
  let found
  try {
    found = await resolveTrusted(path, {leaf: 'program'})
  } catch {
    // Cannot be checked here (no permission to look): the run will say what is wrong.
    return {path}
  }
  if (found.kind !== 'untrusted') return {path}
  const where = found.ancestor ? `it sits in ${shown(found.at)}, which ${found.reason}` : `${shown(found.at)} ${found.reason}`
  return {refused: `${where}: whoever can change it could run code as root; fix: ${found.fix}`}
}
