/**
 * A TCP proxy on 127.0.0.1:0 in front of a server, for tests of what a client does when a
 * connection breaks at a chosen moment: it can hold back everything the server sends (so requests
 * reach the server and are processed, but no answer reaches the client) and then cut every
 * connection, which the client sees as `UNAVAILABLE` with its requests unanswered.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** See the file comment. */
export class FreezableProxy {
  private readonly sockets = new Set<Socket>();
  private isFrozen = false;
  /** Connections the proxy accepted so far. */
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  /** Starts a proxy to `target` (`host:port`). */
  static async start(target: string): Promise<FreezableProxy> {
    const [host, port] = target.split(':') as [string, string];
    let proxy: FreezableProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, host, Number(port)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    proxy = new FreezableProxy(server, `127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  private accept(client: Socket, host: string, port: number): void {
    this.connections++;
    const upstream = createConnection({ host, port });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      // Frozen: what the server sends is dropped, as on a link that died after the request went out.
      if (!this.isFrozen) client.write(chunk);
    });
  }

  /** From now on, nothing the server sends reaches the client. */
  freeze(): void {
    this.isFrozen = true;
  }

  /** Cuts every open connection, and lets answers through again on the next ones. */
  cutAndThaw(): void {
    for (const socket of this.sockets) socket.destroy();
    this.isFrozen = false;
  }

  /** Cuts every connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}
