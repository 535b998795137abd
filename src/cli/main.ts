#!/usr/bin/env node
/**
 * The `wald` command (the package's bin entry). See docs/cli.md.
 */
import { runCli } from './program.js';

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // A closed pipe (`wald tail | head`) is the reader saying it has enough: not an error.
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

// Over TLS, grpc-js sends the host of --server as the TLS server name (SNI), an IP address on most
// set-ups (127.0.0.1), and Node warns about that on every connection (DEP0123: RFC 6066 names no
// IP addresses). The certificate is still checked against the address. That one warning is
// dropped so that stderr holds what wald prints (one JSON object under --json); all others pass.
const printWarning = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code !== 'DEP0123') for (const listener of printWarning) listener(warning);
});

process.exitCode = await runCli(process.argv);
