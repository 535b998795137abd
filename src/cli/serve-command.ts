import { readFileSync } from 'node:fs';
import { Option, type Command, type OptionValues as CommanderValues } from 'commander';
import { ConfigError } from '../config/config-error.js';
import type { ConfigFile } from '../config/config-file.js';
import type { ConfigKey } from '../config/config-key.js';
import type { ConfigSchema } from '../config/config-schema.js';
import { CONFIG_FILE_ENV, SERVE_CONFIG, type ServeConfig } from '../config/serve-config.js';
import type { OptionDeclarations } from '../options/option-spec.js';
import { UsageError } from './exit-codes.js';
import { printText } from './output.js';

/** The value a boolean flag may take (`--reflection=false`); without one it is `true`. */
const BOOLEAN_FLAG_VALUE = 'true|false';

/** The flags of `wald serve` besides the keys' own. */
interface ServeFlags {
  readonly config?: string;
  readonly printConfig?: 'yaml' | 'json' | true;
}

function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(undefined, path, `cannot read config file ${path}: ${(error as Error).message}`);
  }
  return SERVE_CONFIG.parseFile(text, path);
}

/**
 * The flags of `schema`'s keys for commander: `--name <unit>`, or for a boolean `--name` (also
 * `--name=false`, `--name true`) and `--no-name`.
 */
export function keyFlagOptions<D extends OptionDeclarations>(schema: ConfigSchema<D>): Option[] {
  return schema.keys.flatMap((key) => {
    const { spec } = key.option;
    const choices = spec.choices === undefined ? '' : `one of ${spec.choices.join(', ')}; `;
    const description = `${spec.doc} (${choices}default: ${spec.default === undefined ? 'none' : String(spec.default)}; env ${key.env})`;
    if (spec.textForm === 'boolean') {
      return [new Option(`${key.flag} [${BOOLEAN_FLAG_VALUE}]`, description), new Option(`--no-${key.flag.slice(2)}`, `turn ${key.name} off`)];
    }
    return [new Option(`${key.flag} <${spec.unit}>`, description)];
  });
}

/** The values of `schema`'s keys among commander's parsed options, by key name (`sync_interval_ms`). */
export function keyFlagValues<D extends OptionDeclarations>(schema: ConfigSchema<D>, parsed: CommanderValues): Record<string, unknown> {
  return Object.fromEntries(schema.keys.map((key: ConfigKey) => [key.name, parsed[new Option(key.flag).attributeName()]]));
}

/**
 * Resolves the configuration of `wald serve` from its flags, the environment and the config file
 * (`--config`, else `WALD_CONFIG`). Throws `UsageError` naming the key for any bad value.
 */
export function loadServeConfig(parsed: CommanderValues & ServeFlags, env: Readonly<Record<string, string | undefined>>): ServeConfig {
  try {
    const path = parsed.config ?? (env[CONFIG_FILE_ENV] === '' ? undefined : env[CONFIG_FILE_ENV]);
    const file = path === undefined ? undefined : readConfigFile(path);
    return SERVE_CONFIG.resolve({ flags: keyFlagValues(SERVE_CONFIG, parsed), env, file });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** Registers `wald serve`: the server, configured by flags, environment and a YAML file. */
export function registerServeCommand(program: Command): void {
  const command = program
    .command('serve')
    .summary('run the wald server')
    .description(
      'Open (and recover) the log in --data-dir and serve it over gRPC on --listen until SIGINT or SIGTERM. ' +
        'Every option can also be set by its environment variable or by its snake_case key in the YAML file ' +
        `given by --config (or ${CONFIG_FILE_ENV}): --sync-interval-ms is sync_interval_ms; ` +
        'precedence: flags > environment > file > defaults. Logs are JSON lines on stdout.',
    )
    .option('--config <file>', `YAML config file (env ${CONFIG_FILE_ENV})`)
    .addOption(new Option('--print-config [format]', 'print the resolved configuration and exit').choices(['yaml', 'json']));
  for (const option of keyFlagOptions(SERVE_CONFIG)) command.addOption(option);
  command.action(async (parsed: CommanderValues & ServeFlags) => {
    const config = loadServeConfig(parsed, process.env);
    if (parsed.printConfig !== undefined) {
      printText(SERVE_CONFIG.format(config, parsed.printConfig === 'json' ? 'json' : 'yaml'));
      return;
    }
    // Loaded only here: the client commands need neither the server nor the engine.
    const { runServer } = await import('./run-server.js');
    await runServer(config);
  });
}
