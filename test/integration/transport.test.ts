import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:http2';
import { describe, test } from 'node:test';
import { startServer } from './support/harness.js';

describe('transport', { timeout: 60_000 }, () => {
  for (const windowBytes of [undefined, 4 * 1024 * 1024]) {
    const expected = windowBytes ?? 1024 * 1024;
    test(`the HTTP/2 window a raw http2 client sees is exactly receiveWindowBytes, for the connection and each stream (${windowBytes ?? 'default 1 MiB'})`, async () => {
      const h = await startServer({ server: windowBytes === undefined ? {} : { receiveWindowBytes: windowBytes } });
      const session = connect(`http://${h.address}`);
      session.on('error', () => {});
      try {
        const grant = h.server.receiveWindow;
        assert.ok(grant !== undefined, 'known once the server has started');
        assert.equal(grant.isHooked, true, 'grpc-js internals found: the window is applied to new connections');
        assert.equal(grant.windowBytes, expected);

        // The server's first SETTINGS are Node's defaults; its connection handler then sends a
        // WINDOW_UPDATE and new SETTINGS. Both go out before the answer to a PING sent after the
        // first SETTINGS arrived, so once that answer is in, the client has seen whatever the
        // server granted: nothing to wait for beyond it, and a missing grant fails at once.
        await once(session, 'remoteSettings');
        await new Promise<void>((resolve, reject) => session.ping((error) => (error === null ? resolve() : reject(error))));
        assert.equal(session.remoteSettings.initialWindowSize, expected, 'each stream (SETTINGS_INITIAL_WINDOW_SIZE)');
        assert.equal(session.state.remoteWindowSize, expected, 'the connection (WINDOW_UPDATE on stream 0)');
        assert.equal(grant.grantedSessions, 1);
        assert.equal(grant.failedSessions, 0);
      } finally {
        session.destroy();
        await h.close();
      }
    });
  }
});
