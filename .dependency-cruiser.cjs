/**
 * Import rules of wald (STYLE.md section 1), checked on the compiled JavaScript in dist/src:
 * no cycles, and layers import one way only:
 *   codec <- storage <- engine <- state <- server / replication <- cli
 * wire/ (hand-written protobuf codecs of wald.v1 messages) and client/ (calls for Node clients)
 * sit beside the server: the server and the CLI may use wire/, only client users use client/.
 */
const layer = (name, mayNotImport) => ({
  name: `${name}-imports-one-way`,
  severity: 'error',
  comment: `${name}/ may not import ${mayNotImport.join(', ')}`,
  from: { path: `^dist/src/${name}/` },
  to: { path: `^dist/src/(${mayNotImport.join('|')})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'a cycle between files is a defect', from: {}, to: { circular: true } },
    layer('codec', ['storage', 'engine', 'state', 'server', 'replication', 'cli', 'wire', 'client']),
    layer('wire', ['storage', 'engine', 'state', 'server', 'replication', 'cli', 'client']),
    layer('client', ['storage', 'engine', 'state', 'server', 'cli']),
    layer('storage', ['codec', 'engine', 'state', 'server', 'replication', 'cli', 'wire', 'client']),
    layer('engine', ['state', 'server', 'replication', 'cli', 'wire', 'client']),
    layer('state', ['server', 'replication', 'cli', 'wire', 'client']),
    layer('server', ['replication', 'cli', 'client']),
    layer('replication', ['cli']),
    {
      name: 'fs-only-in-storage',
      severity: 'error',
      comment: 'node:fs is called only by src/storage (and the CLI/server entry points that read config files)',
      from: { path: '^dist/src/(codec|engine|state)/' },
      to: { path: '^(node:)?fs(/promises)?$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/src/gen/' },
  },
};
