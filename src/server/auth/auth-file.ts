/**
 * The auth file of `wald serve` (`auth_file`): the bearer tokens the server accepts, each stored as
 * the SHA-256 of the token (never the token) with the role it grants and an optional name for the
 * logs.
 *
 * ```yaml
 * tokens:
 *   - name: ingest            # optional; shown in logs, never the token
 *     token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
 *     role: write             # read | write | admin
 * ```
 */
import { open } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { isRole, ROLES, type Role } from './role.js';

/** One accepted token: the SHA-256 of the token, its role, and its name (if the file gives one). */
export interface AuthEntry {
  /** The token's SHA-256, 32 bytes. */
  readonly tokenSha256: Buffer;
  readonly role: Role;
  /** The name of the token for log lines; undefined when the file gives none. */
  readonly name: string | undefined;
}

/** An auth file that cannot be used: unreadable, too large, not YAML, or an entry that is wrong. */
export class AuthFileError extends Error {
  override readonly name = 'AuthFileError';

  constructor(
    /** The file at fault. */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`auth file ${path}: ${message}`, options);
  }
}

const ENTRY_KEYS = new Set(['token_sha256', 'role', 'name']);
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

function isMapping(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseEntry(value: unknown, index: number, path: string): AuthEntry {
  const where = `tokens[${index}]`;
  if (!isMapping(value)) throw new AuthFileError(path, `${where} must be a mapping with token_sha256 and role`);
  for (const key of Object.keys(value)) {
    if (!ENTRY_KEYS.has(key)) throw new AuthFileError(path, `${where}: unknown key ${key} (known: ${[...ENTRY_KEYS].join(', ')})`);
  }
  const { token_sha256: hash, role, name } = value;
  if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
    throw new AuthFileError(path, `${where}.token_sha256 must be 64 hex digits (the SHA-256 of the token: wald auth hash-token)`);
  }
  if (!isRole(role)) throw new AuthFileError(path, `${where}.role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`);
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new AuthFileError(path, `${where}.name must be a non-empty string`);
  return { tokenSha256: Buffer.from(hash, 'hex'), role, name };
}

/**
 * The entries of the YAML text of an auth file.
 *
 * @throws AuthFileError when the text is not YAML, not a mapping with a `tokens` list (and nothing
 *   else), or an entry has an unknown key, a `token_sha256` that is not 64 hex digits, an unknown
 *   role, an empty name, or the hash of an earlier entry.
 */
export function parseAuthFile(text: string, path: string): AuthEntry[] {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new AuthFileError(path, `not valid YAML: ${(error as Error).message}`);
  }
  if (!isMapping(parsed) || !Array.isArray(parsed['tokens'])) throw new AuthFileError(path, 'must be a mapping with a list under tokens');
  const unknown = Object.keys(parsed).filter((key) => key !== 'tokens');
  if (unknown.length > 0) throw new AuthFileError(path, `unknown key ${unknown[0]} (the file holds tokens only)`);
  const entries = (parsed['tokens'] as unknown[]).map((entry, index) => parseEntry(entry, index, path));
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    const hex = entry.tokenSha256.toString('hex');
    const earlier = seen.get(hex);
    if (earlier !== undefined) throw new AuthFileError(path, `tokens[${index}] has the token_sha256 of tokens[${earlier}]`);
    seen.set(hex, index);
  });
  return entries;
}

/**
 * Reads and parses the auth file at `path`, refusing one larger than `maxBytes` (the file is
 * read at most that far, so a wrong path such as a device cannot make the server read without end).
 *
 * @throws AuthFileError as {@link parseAuthFile}, and when the file cannot be read or holds more
 *   than `maxBytes` bytes.
 */
export async function loadAuthFile(path: string, maxBytes: number): Promise<AuthEntry[]> {
  let text: string;
  try {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(maxBytes + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      if (length > maxBytes) throw new AuthFileError(path, `larger than max_auth_file_bytes (${maxBytes} bytes)`);
      text = buffer.toString('utf8', 0, length);
    } finally {
      await file.close();
    }
  } catch (error) {
    if (error instanceof AuthFileError) throw error;
    throw new AuthFileError(path, `cannot be read: ${(error as Error).message}`, { cause: error });
  }
  return parseAuthFile(text, path);
}
