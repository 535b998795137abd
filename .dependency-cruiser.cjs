/**
 * Import rules of wald (STYLE.md section 1), checked on the TypeScript sources in src/ so that
 * `import type` edges count like any other import: no cycles, and layers import one way only:
 *   codec <- storage <- engine <- state <- server / replication / offline <- cli
 * wire/ (hand-written protobuf codecs of wald.v1 messages, the names of the rich-error trailer)
 * and client/ (calls and error decoding for Node clients) sit beside the server: the server and
 * the CLI may use wire/, only client users (the CLI, tests, scripts) use client/.
 * options/ (how a layer declares its options) sits below every layer and imports none;
 * config/ (the configuration of `wald serve`, composed from the engine's and server's
 * declarations) sits between them and the CLI, and needs no storage. offline/ (the offline tools
 * behind `wald verify`, `dump` and `repair`: the log and its snapshots read and cut without a
 * server) sits beside the server, above the engine and the state, and only the CLI uses it.
 *
 * The sources are parsed with swc: the `typescript` package of TypeScript 7 has no JavaScript
 * compiler API, and dependency-cruiser 16's tsc parser (`tsPreCompilationDeps`, `tsConfig`) needs
 * typescript < 6. swc's parser reports every import declaration, type-only ones included; a
 * `./x.js` specifier resolves to `./x.ts` on its own (nodenext style).
 */
const ALL = ['options', 'codec', 'storage', 'engine', 'state', 'server', 'replication', 'offline', 'config', 'cli', 'wire', 'client'];
const layer = (name, mayNotImport) => ({
  name: `${name}-imports-one-way`,
  severity: 'error',
  comment: `${name}/ may not import ${mayNotImport.join(', ')}`,
  from: { path: `^src/${name}/` },
  to: { path: `^src/(${mayNotImport.join('|')})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'a cycle between files is a defect', from: {}, to: { circular: true } },
    layer('options', ALL.filter((name) => name !== 'options')),
    layer('codec', ['storage', 'engine', 'state', 'server', 'replication', 'offline', 'config', 'cli', 'wire', 'client']),
    layer('wire', ['storage', 'engine', 'state', 'server', 'replication', 'offline', 'config', 'cli', 'client']),
    layer('client', ['storage', 'engine', 'state', 'server', 'offline', 'config', 'cli']),
    layer('storage', ['codec', 'engine', 'state', 'server', 'replication', 'offline', 'config', 'cli', 'wire', 'client']),
    layer('engine', ['state', 'server', 'replication', 'offline', 'config', 'cli', 'wire', 'client']),
    layer('state', ['server', 'replication', 'offline', 'config', 'cli', 'wire', 'client']),
    layer('server', ['replication', 'offline', 'config', 'cli', 'client']),
    layer('replication', ['offline', 'config', 'cli']),
    layer('offline', ['server', 'replication', 'config', 'cli', 'wire', 'client']),
    layer('config', ['storage', 'offline', 'cli', 'client']),
    {
      name: 'fs-only-in-storage',
      severity: 'error',
      comment: 'node:fs is called only by src/storage (and the CLI/server entry points that read config files)',
      from: { path: '^src/(options|codec|engine|state|offline|config)/' },
      to: { path: '^(node:)?fs(/promises)?$' },
    },
  ],
  options: {
    parser: 'swc',
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/gen/' },
    // Resolve package subpaths such as @bufbuild/protobuf/wire through their "exports" maps.
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
