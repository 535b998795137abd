import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Settings } from 'node:http2';
import { describe, test } from 'node:test';
import { startServer } from './support/harness.js';

describe('transport', { timeout: 60_000 }, () => {
  for (const windowBytes of [undefined, 4 * 1024 * 1024]) {
    test(`the server grants each HTTP/2 stream a receive window of receiveWindowBytes (${windowBytes ?? 'default 1 MiB'})`, async () => {
      const h = await startServer({ server: windowBytes === undefined ? {} : { receiveWindowBytes: windowBytes } });
      const session = connect(`http://${h.address}`);
      try {
        // The server's SETTINGS after its connection handler ran: the first ones are Node's defaults.
        let settings: Settings = {};
        for (let i = 0; i < 3 && settings.initialWindowSize !== (windowBytes ?? 1024 * 1024); i++) {
          [settings] = (await once(session, 'remoteSettings')) as [Settings];
        }
        assert.equal(settings.initialWindowSize, windowBytes ?? 1024 * 1024);
      } finally {
        session.destroy();
        await h.close();
      }
    });
  }
});
