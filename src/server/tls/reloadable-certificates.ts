import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';

/** The PEM files of the server's TLS: its certificate chain and key, and the CAs of client certificates (mutual TLS). */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Set: clients must present a certificate that one of these CAs signed. */
  readonly clientCaFile: string | undefined;
}

/** What the files held when they were last read and checked. */
interface LoadedCertificates {
  readonly identity: experimental.IdentityCertificateUpdate;
  readonly ca: experimental.CaCertificateUpdate | null;
  /** The leaf certificate, for log lines (subject, expiry). */
  readonly leaf: X509Certificate;
}

/** TLS files that cannot be used: unreadable, not PEM, or a key that is not the certificate's. */
export class TlsFilesError extends Error {
  override readonly name = 'TlsFilesError';
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new TlsFilesError(`cannot read the ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Throws unless `pem` holds one or more PEM certificates, every one of them readable. */
function checkCertificates(pem: Buffer, path: string): void {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error(`${path} holds no PEM certificate`);
  for (const block of blocks) new X509Certificate(block);
}

async function loadCertificates(files: TlsFiles): Promise<LoadedCertificates> {
  // Read together, reported in a fixed order (certificate, key, CA): the first failure in that
  // order, not whichever read failed first.
  const reads = await Promise.allSettled([
    readPem(files.certFile, 'TLS certificate (tls_cert)'),
    readPem(files.keyFile, 'TLS key (tls_key)'),
    files.clientCaFile === undefined ? Promise.resolve(undefined) : readPem(files.clientCaFile, 'client CA (tls_client_ca)'),
  ]);
  for (const read of reads) if (read.status === 'rejected') throw read.reason;
  const [certificate, privateKey, caCertificate] = reads.map((read) => (read.status === 'fulfilled' ? read.value : undefined)) as [Buffer, Buffer, Buffer | undefined];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificate);
    // What grpc-js will do with them: a key that is not the certificate's, or a file that is not
    // PEM, fails here rather than in grpc-js, which would then refuse every new connection.
    createSecureContext({ cert: certificate, key: privateKey, ca: caCertificate });
    // createSecureContext takes any bytes as `ca` (empty, garbage, a key) without a word, and every
    // client would then be refused: the file must hold at least one certificate, each one parsing.
    if (caCertificate !== undefined) checkCertificates(caCertificate, files.clientCaFile!);
  } catch (error) {
    const names = [files.certFile, files.keyFile, files.clientCaFile].filter((name) => name !== undefined).join(', ');
    throw new TlsFilesError(`the TLS files ${names} cannot be used: ${(error as Error).message}`, { cause: error });
  }
  return { identity: { certificate, privateKey }, ca: caCertificate === undefined ? null : { caCertificate }, leaf };
}

/**
 * The server's certificate, key and client CAs, read from their files at start and again at each
 * {@link reload} (SIGHUP), as a grpc-js `CertificateProvider`: grpc-js then gives each reload to
 * its TLS server (`setSecureContext`), so new connections get the new files and open ones, with
 * their tails, go on.
 *
 * Why not grpc-js's own `FileWatcherCertificateProvider`: it re-reads the files on a timer (not
 * when the operator says the new files are in place), reads them only once a server listens (the
 * first connections find no certificate and are dropped), and on a file it cannot read, such as
 * one renamed away mid-rotation, hands grpc-js no certificate at all, which then drops every new
 * connection. This one reads and checks the files before it starts and on demand, and keeps the
 * files in force when new ones do not load.
 */
export class ReloadableCertificates implements experimental.CertificateProvider {
  private loaded: LoadedCertificates;
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();

  private constructor(
    readonly files: TlsFiles,
    loaded: LoadedCertificates,
  ) {
    this.loaded = loaded;
  }

  /**
   * Reads and checks `files`.
   *
   * @throws TlsFilesError when a file cannot be read, is not PEM, or the key is not the certificate's.
   */
  static async load(files: TlsFiles): Promise<ReloadableCertificates> {
    return new ReloadableCertificates(files, await loadCertificates(files));
  }

  /** Whether clients must present a certificate (mutual TLS). */
  get isMutual(): boolean {
    return this.files.clientCaFile !== undefined;
  }

  /** The subject and expiry of the certificate in force, for log lines. */
  get summary(): { readonly subject: string; readonly validTo: string } {
    return { subject: this.loaded.leaf.subject, validTo: this.loaded.leaf.validTo };
  }

  /**
   * Reads and checks the files again and, when they can be used, makes them the ones new
   * connections get.
   *
   * @throws TlsFilesError as {@link load}; the files in force stay so then.
   */
  async reload(): Promise<void> {
    this.loaded = await loadCertificates(this.files);
    for (const listener of this.identityListeners) listener(this.loaded.identity);
    if (this.loaded.ca !== null) for (const listener of this.caListeners) listener(this.loaded.ca);
  }

  /**
   * The grpc-js server credentials over these files: TLS, and with a client CA, mutual TLS (the
   * handshake fails for a client without a certificate the CA signed).
   */
  credentials(): ServerCredentials {
    // grpc-js 1.14 declares the parameters (caCertificateProvider, identityCertificateProvider,
    // ...) but its server-credentials.ts passes the first on as the identity provider and the second
    // as the CA provider; the TLS tests (TLS alone, and mutual) fail if an upgrade swaps them.
    return experimental.createCertificateProviderServerCredentials(this, this.isMutual ? this : null, this.isMutual);
  }

  /**
   * Subscribes `listener` and hands it the CA in force on the next tick, before the server can
   * accept a connection. Not at once: grpc-js subscribes to its providers before it registers the
   * TLS server that the update is for, so an update given during the call would be lost and
   * grpc-js would drop every connection as having no certificate.
   */
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.loaded.ca);
    });
  }

  /** Unsubscribes `listener`. */
  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  /** Subscribes `listener` and hands it the certificate and key in force on the next tick (see {@link addCaCertificateListener}). */
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener(this.loaded.identity);
    });
  }

  /** Unsubscribes `listener`. */
  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}
