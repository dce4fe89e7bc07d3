/** Why an object-store call failed, as a stable machine-readable code. */
export type ObjectStoreErrorCode =
  | 'NotFound' // no such key
  | 'NoSuchBucket'
  | 'AccessDenied' // credentials missing, wrong, or not allowed
  | 'PreconditionFailed' // If-Match no longer holds: the object changed
  | 'InvalidArgument' // the request itself is malformed (bad key, bad range)
  | 'Unavailable' // unreachable, timed out, or still failing after retries (5xx, SlowDown)
  | 'Internal'; // anything else

/** The one error type object stores throw; `cause` keeps the underlying error. */
export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  /** Requests the call sent before it failed, when the store counts them (its retries included). */
  readonly attempts: number | undefined;

  constructor(
    readonly code: ObjectStoreErrorCode,
    message: string,
    options?: { cause?: unknown; attempts?: number },
  ) {
    super(message, options);
    this.attempts = options?.attempts;
  }
}

/** True when `error` is an ObjectStoreError with one of the given codes. */
export function isObjectStoreError(error: unknown, ...codes: ObjectStoreErrorCode[]): error is ObjectStoreError {
  return error instanceof ObjectStoreError && (codes.length === 0 || codes.includes(error.code));
}
