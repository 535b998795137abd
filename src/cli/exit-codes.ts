/** Exit codes of the `wald` command. */
export const EXIT_CODES = Object.freeze({
  /** The command did what was asked. */
  ok: 0,
  /** The server answered with an error, could not be reached, or the server failed to run. */
  serverError: 1,
  /** The command line or the configuration is wrong; nothing was sent. */
  usage: 2,
});

/** The exit code of a run; see {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** A wrong command line detected by a command itself (commander reports its own): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that could not do its job for a reason other than a failed call (exit code 1). */
export class CommandFailure extends Error {
  override readonly name = 'CommandFailure';
}
