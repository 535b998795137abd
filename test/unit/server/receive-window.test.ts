/**
 * `grantReceiveWindow` reaches into grpc-js internals. These tests pin the shape it relies on in the
 * grpc-js that package.json names, so an upgrade that moves it fails here, loudly, instead of only
 * logging at runtime while every server silently keeps a 64 KiB window.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, type Http2Session } from 'node:http2';
import { Server as NetServer } from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { pino } from 'pino';
import { grantReceiveWindow, http2ServersOf } from '../../../src/server/receive-window.js';

const silent = pino({ level: 'silent' });

/** A bound grpc-js server on 127.0.0.1:0 and its port. */
async function boundServer(): Promise<{ server: Server; port: number }> {
  const server = new Server();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  return { server, port };
}

describe('grantReceiveWindow and the grpc-js internals it relies on', () => {
  test('the grpc-js installed is the version package.json pins', () => {
    const packageJson = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string };
    assert.match(packageJson.dependencies['@grpc/grpc-js']!, /^\d+\.\d+\.\d+$/, 'pinned exactly, so the shape below cannot drift');
    assert.equal(installed.version, packageJson.dependencies['@grpc/grpc-js']);
  });

  test('a bound grpc-js Server keeps its HTTP/2 servers in http2Servers, and they emit each connection as a session', async () => {
    const { server, port } = await boundServer();
    const client = connect(`http://127.0.0.1:${port}`);
    client.on('error', () => {});
    try {
      const internals = (server as unknown as { http2Servers: unknown }).http2Servers;
      assert.ok(internals instanceof Map, 'grpc-js Server#http2Servers is a Map');
      assert.equal(internals.size, 1, 'one HTTP/2 server per bound address');
      const servers = http2ServersOf(server);
      assert.ok(servers !== undefined, 'http2ServersOf recognises the shape');
      assert.equal(servers.length, 1);
      assert.ok(servers[0] instanceof NetServer);
      assert.equal(servers[0], [...internals.keys()][0]);
      const [session] = (await once(servers[0], 'session')) as [Http2Session];
      assert.equal(typeof session.setLocalWindowSize, 'function');
      assert.equal(typeof session.settings, 'function');
    } finally {
      client.destroy();
      server.forceShutdown();
    }
  });

  test('on the pinned grpc-js the window is hooked and every connection is granted it', async () => {
    const { server, port } = await boundServer();
    const grant = grantReceiveWindow(server, 2 * 1024 * 1024, silent);
    const client = connect(`http://127.0.0.1:${port}`);
    client.on('error', () => {});
    try {
      assert.equal(grant.isHooked, true);
      assert.equal(grant.windowBytes, 2 * 1024 * 1024);
      await once(client, 'remoteSettings');
      // The server applied the window in its session handler, before answering this PING.
      await new Promise<void>((resolve, reject) => client.ping((error) => (error === null ? resolve() : reject(error))));
      assert.equal(grant.grantedSessions, 1);
      assert.equal(grant.failedSessions, 0);
      assert.equal(client.state.remoteWindowSize, 2 * 1024 * 1024, 'the connection window');
      assert.equal(client.remoteSettings.initialWindowSize, 2 * 1024 * 1024, 'the window of each stream');
    } finally {
      client.destroy();
      server.forceShutdown();
    }
  });

  test('when the internals are not there it logs an error and reports the window as not applied', () => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString('utf8')) as { level: number; msg: string });
        callback();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    for (const internals of [{}, { http2Servers: new Map() }, { http2Servers: new Map([[{ on() {} }, {}]]) }, { http2Servers: [] }]) {
      const server = internals as unknown as Server;
      assert.equal(http2ServersOf(server), undefined);
      const grant = grantReceiveWindow(server, 1024 * 1024, logger);
      assert.equal(grant.isHooked, false);
      assert.equal(grant.grantedSessions, 0);
    }
    assert.equal(lines.length, 4);
    for (const line of lines) {
      assert.equal(line.level, 50, 'logged as an error');
      assert.match(line.msg, /receiveWindowBytes is not applied/);
    }
  });
});
