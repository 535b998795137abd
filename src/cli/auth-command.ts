import type { Command } from 'commander';
import { hashAccessToken, isAccessToken } from '../server/auth/access-token.js';
import { UsageError } from './exit-codes.js';
import { printJson, printText } from './output.js';

/** Most bytes `wald auth hash-token` reads from stdin: a token is at most 4096 characters. */
const MAX_TOKEN_INPUT_BYTES = 64 * 1024;

async function readToken(): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += buffer.length;
    if (total > MAX_TOKEN_INPUT_BYTES) throw new UsageError(`stdin holds more than ${MAX_TOKEN_INPUT_BYTES} bytes: not a token`);
    chunks.push(buffer);
  }
  // As the client reads a token file: surrounding whitespace (the newline of `echo`) is not part of it.
  const token = Buffer.concat(chunks).toString('utf8').trim();
  if (!isAccessToken(token)) throw new UsageError('stdin does not hold a token: 1 to 4096 printable ASCII characters without spaces');
  return token;
}

/** Registers `wald auth hash-token`: the SHA-256 that an auth file stores for a token. */
export function registerAuthCommand(program: Command): void {
  const auth = program.command('auth').summary('bearer tokens of the auth file').description('Tools for the auth file of `wald serve --auth-file`.');
  auth
    .command('hash-token')
    .summary('print the SHA-256 of a token read from stdin')
    .description(
      'Read a bearer token from stdin (surrounding whitespace ignored) and print its SHA-256 in hex: the ' +
        'token_sha256 of an auth file entry. The token itself goes to the clients only (--token-file or WALD_TOKEN).',
    )
    .option('--json', 'print JSON instead of text', false)
    .action(async (options: { readonly json: boolean }) => {
      const hash = hashAccessToken(await readToken());
      if (options.json) printJson({ token_sha256: hash });
      else printText(`${hash}\n`);
    });
}
