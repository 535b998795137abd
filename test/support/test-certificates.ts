/**
 * Certificates made for a test with Debian's `openssl` (installed by .ci/run): a CA, and server
 * and client certificates it signs, as PEM files in a directory the test owns. P-256 keys, valid
 * for two days; the server certificate names `127.0.0.1` and `localhost`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its key, as PEM files. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** A CA: its own certificate and key, and the directory it writes the certificates it signs into. */
export interface TestCa extends CertificateFiles {
  readonly name: string;
  readonly dir: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes a self-signed CA named `name` in `dir` (files `<name>.crt`, `<name>.key`). */
export function makeTestCa(dir: string, name: string): TestCa {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(
    ['req', '-x509', ...KEY_ARGS, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  return { name, dir, cert, key };
}

/**
 * Makes a certificate named `name` signed by `ca`, for a server (`127.0.0.1`, `localhost`) or a
 * client (TLS client authentication), in `ca.dir` (files `<name>.crt`, `<name>.key`).
 */
export function signTestCertificate(ca: TestCa, name: string, use: 'server' | 'client'): CertificateFiles {
  const cert = join(ca.dir, `${name}.crt`);
  const key = join(ca.dir, `${name}.key`);
  const csr = join(ca.dir, `${name}.csr`);
  const extensions = join(ca.dir, `${name}.ext`);
  writeFileSync(
    extensions,
    use === 'server'
      ? 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
      : 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n',
  );
  openssl(['req', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], ca.dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', extensions], ca.dir);
  return { cert, key };
}
