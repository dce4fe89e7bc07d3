import { status } from '@grpc/grpc-js';
import { isObjectStoreError } from '../objectstore/errors';

/** A gRPC status code by name, e.g. 'INVALID_ARGUMENT'. */
export type CsiCode = keyof typeof status;

/** The one error type CSI handlers throw: a gRPC status code and a message that says what to fix. */
export class CsiError extends Error {
  override readonly name = 'CsiError';

  constructor(
    readonly code: CsiCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The numeric gRPC status. */
  get status(): status {
    return status[this.code];
  }
}

/** Turns anything thrown below a handler into a CsiError with the right code (object-store failures included). */
export function toCsiError(error: unknown, context: string): CsiError {
  if (error instanceof CsiError) return error;
  if (isObjectStoreError(error)) {
    const message = `${context}: ${error.message}`;
    switch (error.code) {
      case 'AccessDenied':
        return new CsiError('PERMISSION_DENIED', `${message} (check the accessKeyID/secretAccessKey secret and the bucket policy)`, { cause: error });
      case 'NoSuchBucket':
        return new CsiError('NOT_FOUND', `${message} (create the bucket or fix the 'bucket' parameter)`, { cause: error });
      case 'Unavailable':
        return new CsiError('UNAVAILABLE', `${message} (the object store is unreachable; check the endpoint and network, the call can be retried)`, { cause: error });
      case 'InvalidArgument':
        return new CsiError('INVALID_ARGUMENT', message, { cause: error });
      case 'NotFound':
        return new CsiError('NOT_FOUND', message, { cause: error });
      case 'PreconditionFailed':
        return new CsiError('ABORTED', `${message} (the object changed while the call ran; retry)`, { cause: error });
      default:
        return new CsiError('INTERNAL', message, { cause: error });
    }
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new CsiError('INTERNAL', `${context}: ${detail}`, { cause: error });
}
