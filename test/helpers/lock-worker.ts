/**
 * One process of the "never two holders" test (test/faults/concurrency.test.ts):
 *   node --import tsx test/helpers/lock-worker.ts LOCK DIR ROUNDS SEED DIE_AT
 * takes rcguard's database lock ROUNDS times. Inside it, it makes DIR/holder
 * with O_EXCL: if that file is already there, another process is inside too,
 * and it prints so and exits 3. It notes every hold in DIR/holds. In round
 * DIE_AT (0: never), and otherwise in 1 round of 40 at random, it kills itself
 * with SIGKILL while holding the lock (its marker removed first: the lock, not
 * the marker, is what the next holder must get past).
 */
import {appendFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {acquireLock} from '../../src/core/store/lock.js'
import {seededRandom} from './env.js'

const [lock = '', dir = '', roundsText = '1', seedText = '1', dieAtText = '0'] = process.argv.slice(2)
const random = seededRandom(Number(seedText))
const dieAt = Number(dieAtText)
const marker = join(dir, 'holder')

for (let round = 1; round <= Number(roundsText); round++) {
  const held = await acquireLock(lock, {waitMs: 60_000})
  try {
    writeFileSync(marker, String(process.pid), {flag: 'wx'})
  } catch {
    console.log(`process ${process.pid} round ${round}: another process is inside the lock`)
    process.exit(3)
  }
  appendFileSync(join(dir, 'holds'), `${process.pid} ${round}\n`)
  await new Promise((r) => setTimeout(r, Math.floor(random() * 3)))
  unlinkSync(marker)
  if (round === dieAt || (dieAt === 0 && random() < 0.025)) process.kill(process.pid, 'SIGKILL')
  await held.release()
}
