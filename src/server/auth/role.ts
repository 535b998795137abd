/**
 * The roles a bearer token can hold, least to most: `read` may read the log and the key-value
 * view, `write` may also append and sync, `admin` may also run the operations that change or
 * remove what others rely on (FlushAll, snapshots, compaction, deletion, promotion). Each role
 * holds every right of the roles before it, so an RPC names one role, the least that may call it.
 */
export const ROLES = ['read', 'write', 'admin'] as const;

/** A role of a bearer token; see {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** Whether `value` is a role's name. */
export function isRole(value: unknown): value is Role {
  return (ROLES as readonly unknown[]).includes(value);
}

/** Whether a token of role `held` may call an RPC that needs `needed`. */
export function roleGrants(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}
