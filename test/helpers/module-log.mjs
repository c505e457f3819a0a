// Preloaded by test/cli/bundle.test.ts (`node --import this-file bin/run.js ...`):
// appends the URL of every module file the process loads, one a line, to the
// file named by RCGUARD_TEST_MODULE_LOG. ES modules are logged by a load hook
// as they load (the hook runs on its own thread and writes synchronously);
// CommonJS files, which Node 20's require() loads without the hooks, are
// logged from require's cache when the process exits.
import {appendFileSync} from 'node:fs'
import {createRequire, register} from 'node:module'
import {pathToFileURL} from 'node:url'

const log = process.env.RCGUARD_TEST_MODULE_LOG
if (log !== undefined) {
  const hooks = `
    import {appendFileSync} from 'node:fs'
    let log
    export function initialize(data) { log = data.log }
    export async function load(url, context, next) {
      if (url.startsWith('file:')) appendFileSync(log, url + '\\n')
      return next(url, context)
    }
  `
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, {data: {log}})
  const cache = createRequire(import.meta.url).cache
  process.on('exit', () => {
    const files = Object.keys(cache).filter((f) => f.startsWith('/'))
    if (files.length > 0) appendFileSync(log, files.map((f) => `${pathToFileURL(f).href}\n`).join(''))
  })
}
