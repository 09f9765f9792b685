import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage-error.js';

/**
 * Node's parseArgs with its errors reworded in the CLI's one style, `<flag as typed>: <what is wrong>`:
 * its own messages run to several sentences and start with a capital, unlike every other error of the CLI.
 */
export function parseCommandLine<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>({ strict: true, ...config });
  } catch (e) {
    throw new UsageError(parseProblem(command, e as Error & { code?: string }));
  }
}

function parseProblem(command: string, e: Error & { code?: string }): string {
  // The option as Node quotes it: '--bogus', '--listen <value>', '-h, --help'; the long form is what users type.
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? '';
  const flag = /--[^\s,<]+/.exec(quoted)?.[0] ?? quoted.split(/[\s,]/)[0]!;
  const help = `(run 'sipway ${command} --help')`;
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `${command}: unknown option '${flag}' ${help}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `${command}: unexpected argument '${quoted}' ${help}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /does not take an argument/.test(e.message) ? `${flag}: takes no value` : `${flag}: needs a value ${help}`;
    default:
      return `${command}: ${e.message.split('\n')[0]!}`;
  }
}
