import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  CONFIG_DEFAULTS,
  CONFIG_FILE_ENV,
  CONFIG_KEY_NAMES,
  CONFIG_KEYS,
  ConfigError,
  envName,
  flagName,
  formatConfig,
  parseConfigFile,
  resolveConfig,
  type ConfigFile,
  type ConfigKey,
  type ServeConfig,
} from '../config.js';
import { UsageError } from './exit-codes.js';
import { printText } from './output.js';

type ServeFlags = Partial<Record<ConfigKey, unknown>> & {
  readonly config?: string;
  readonly printConfig?: 'yaml' | 'json' | true;
};

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(undefined, path, `cannot read config file ${path}: ${(error as Error).message}`);
  }
  return parseConfigFile(text, path);
}

/**
 * Resolves the configuration of `wald serve` from its flags, the environment and the config file
 * (`--config`, else `WALD_CONFIG`). Throws `UsageError` naming the key for any bad value.
 */
export function loadServeConfig(flags: ServeFlags, env: Readonly<Record<string, string | undefined>>): ServeConfig {
  try {
    const path = flags.config ?? (env[CONFIG_FILE_ENV] === '' ? undefined : env[CONFIG_FILE_ENV]);
    const file = path === undefined ? undefined : readConfigFile(path);
    const keyFlags = Object.fromEntries(CONFIG_KEY_NAMES.map((key) => [key, flags[key]]));
    return resolveConfig({ flags: keyFlags, env, file });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

function keyOptions(): Option[] {
  return CONFIG_KEY_NAMES.flatMap((key) => {
    const spec = CONFIG_KEYS[key];
    const where = `default: ${String(CONFIG_DEFAULTS[key])}; env ${envName(key)}`;
    if (spec.kind === 'boolean') {
      return [
        new Option(flagName(key), `${spec.description} (${where})`),
        new Option(`--no-${flagName(key).slice(2)}`, `turn ${key} off`),
      ];
    }
    return [new Option(`${flagName(key)} <${spec.valueName}>`, `${spec.description} (${where})`)];
  });
}

/** Registers `wald serve`: the server, configured by flags, environment and a YAML file. */
export function registerServeCommand(program: Command): void {
  const command = program
    .command('serve')
    .summary('run the wald server')
    .description(
      'Open (and recover) the log in --data-dir and serve it over gRPC on --listen until SIGINT or SIGTERM. ' +
        'Every option can also be set by its environment variable or by its camelCase key in the YAML file ' +
        'given by --config (or WALD_CONFIG); precedence: flags > environment > file > defaults. ' +
        'Logs are JSON lines on stdout.',
    )
    .option('--config <file>', `YAML config file (env ${CONFIG_FILE_ENV})`)
    .addOption(new Option('--print-config [format]', 'print the resolved configuration and exit').choices(['yaml', 'json']));
  for (const option of keyOptions()) command.addOption(option);
  command.action(async (flags: ServeFlags) => {
    const config = loadServeConfig(flags, process.env);
    if (flags.printConfig !== undefined) {
      printText(formatConfig(config, flags.printConfig === 'json' ? 'json' : 'yaml'));
      return;
    }
    // Loaded only here: the client commands need neither the server nor the engine.
    const { runServer } = await import('./run-server.js');
    await runServer(config);
  });
}
