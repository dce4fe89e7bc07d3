// Validation of a role's options: one error that lists every problem, each with the field it is in (and the flag
// that sets it, when the caller says), so that an operator fixes them all at once.
import type { z } from 'zod';

/** The flag that sets each option, by the option's path ('s3.versionTtlMs' → '--s3-version-ttl'), for the messages. */
export type OptionFlags = Readonly<Record<string, string>>;

/** A validated role's options; `flags` names the flag of each field in the messages. */
export type ConfigParser<Input, Output> = (input: Input, flags?: OptionFlags) => Output;

/** How a problem's field is named: its flag first when known (an array item by its array's flag), then its path. */
function fieldName(path: ReadonlyArray<PropertyKey>, flags: OptionFlags | undefined): string {
  const field = path.map(String).join('.') || 'config';
  const flag = flags?.[field] ?? flags?.[path.filter((segment) => typeof segment !== 'number').map(String).join('.')];
  return flag ? `${flag} (${field})` : field;
}

/**
 * The parser of `schema`, the options of `role`: returns the validated options (defaults filled), or throws one
 * Error "invalid ROLE configuration: field: problem; field: problem".
 */
export function parseConfig<Schema extends z.ZodType>(schema: Schema, role: string): ConfigParser<z.input<Schema>, z.output<Schema>> {
  return (input, flags) => {
    const result = schema.safeParse(input);
    if (!result.success) {
      const problems = result.error.issues.map((issue) => `${fieldName(issue.path, flags)}: ${issue.message}`);
      throw new Error(`invalid ${role} configuration: ${problems.join('; ')}`);
    }
    return result.data;
  };
}
