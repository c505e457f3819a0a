/** rcguard's core library, for scripts and tests. The CLI lives in src/commands. */
export * from './core/guard.js'
export * from './core/errors.js'
export {loadConfig, validateConfig, type Config} from './core/config/config.js'
export {parseLine} from './core/parser/parse.js'
export {readNewLines} from './core/logreader/reader.js'
export {JsonStore} from './core/store/json-store.js'
export {createBackend, ExecaRunner} from './core/firewall/index.js'
