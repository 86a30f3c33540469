import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'];

/**
 * node:util parseArgs for the command-line tools, with --help (prints the usage, exits 0), the options named
 * in `required` checked, and no stack trace on an unknown or malformed option: the message and the usage go to
 * stderr and the tool exits 2.
 */
export function parseCli<O extends Options, K extends keyof Values<O> & string = never>(
  options: O,
  usage: string,
  required: K[] = [],
): Values<O> & { [P in K]-?: NonNullable<Values<O>[P]> } {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (err) {
    return fail((err as Error).message, usage);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const missing = required.filter((n) => values[n] === undefined || values[n] === '');
  if (missing.length) fail(`missing ${missing.map((n) => `--${n}`).join(', ')}`, usage);
  return values as Values<O> & { [P in K]-?: NonNullable<Values<O>[P]> };
}

function fail(message: string, usage: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}
