/**
 * The part of `fs-native-extensions` (holepunch) that wald uses; the package ships no types.
 * On Linux both calls are `fcntl` open file description locks (`F_OFD_SETLK`) over the whole file.
 */
declare module 'fs-native-extensions' {
  /** Takes an exclusive (or, with `shared`, a shared) lock of `fd`; false when another open file holds a conflicting one. */
  export function tryLock(fd: number, options?: { readonly shared?: boolean }): boolean;
  /** Releases the lock `fd` holds. */
  export function unlock(fd: number): void;
}
