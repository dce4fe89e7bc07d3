// The code of a system error (ENOENT, EACCES, ...) from whatever was thrown.

/** `error.code` when `error` carries a string code (a Node system error), else undefined. */
export const errorCodeOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
