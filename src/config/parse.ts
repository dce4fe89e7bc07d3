// Validation of a role's options: one error that lists every problem, each with the field it is in, so that an
// operator fixes them all at once.
import type { z } from 'zod';

/**
 * The parser of `schema`, the options of `role`: returns the validated options (defaults filled), or throws one
 * Error "invalid ROLE configuration: field: problem; field: problem".
 */
export function parseConfig<Schema extends z.ZodType>(schema: Schema, role: string): (input: z.input<Schema>) => z.output<Schema> {
  return (input) => {
    const result = schema.safeParse(input);
    if (!result.success) {
      const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'config'}: ${issue.message}`);
      throw new Error(`invalid ${role} configuration: ${problems.join('; ')}`);
    }
    return result.data;
  };
}
