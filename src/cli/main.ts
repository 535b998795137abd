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

process.exitCode = await runCli(process.argv);
