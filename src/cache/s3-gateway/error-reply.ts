// The S3 gateway's refusals: one error type with S3's own codes, and the XML body S3 answers them with, so that
// S3 clients (aws-sdk-js, boto3, rclone) show the code and the message to their users unchanged.

/** The HTTP status S3 answers each error code with. */
export const S3_ERROR_STATUS = {
  AccessDenied: 403,
  InvalidAccessKeyId: 403,
  SignatureDoesNotMatch: 403,
  RequestTimeTooSkewed: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidRequest: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  MethodNotAllowed: 405,
  PreconditionFailed: 412,
  InvalidRange: 416,
  InvalidPartNumber: 416,
  InternalError: 500,
  NotImplemented: 501,
  ServiceUnavailable: 503,
} as const;

/** An error code of S3's that the gateway answers with. */
export type S3ErrorCode = keyof typeof S3_ERROR_STATUS;

/** The one error the gateway's request handling throws: S3's code, its HTTP status, and a message saying what to fix. */
export class S3Error extends Error {
  override readonly name = 'S3Error';
  readonly status: number;
  /** Headers the answer carries besides the body (a 416's Content-Range). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly code: S3ErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.status = S3_ERROR_STATUS[code];
    this.headers = options?.headers ?? {};
  }
}

/** What an error answer carries: the status, its headers, and the body ('' for HEAD). */
export interface ErrorReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The request an error answers: its method (HEAD gets no body), the resource it named (its path) and its id. */
export interface ErrorContext {
  method: string;
  resource: string;
  requestId: string;
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/**
 * `text` as XML character data. Characters XML 1.0 cannot hold at all, even as a reference (controls other than
 * tab and newlines, lone surrogates, U+FFFE/U+FFFF), become U+FFFD: an object key may contain them.
 */
export function escapeXml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c)
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}

/** S3's `<Error>` document: Code and Message, then Resource and RequestId when the request got that far. */
export function errorDocument(code: string, message: string, context?: Omit<ErrorContext, 'method'>): string {
  const about = context ? `<Resource>${escapeXml(context.resource)}</Resource><RequestId>${escapeXml(context.requestId)}</RequestId>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message>${about}</Error>`;
}

/** S3's answer to `error` for the request in `context`: `<Error>` with Code, Message, Resource and RequestId. */
export function errorReply(error: S3Error, context: ErrorContext): ErrorReply {
  const headers: Record<string, string> = { ...error.headers, 'x-amz-request-id': context.requestId };
  if (context.method === 'HEAD') return { status: error.status, headers, body: '' };
  const body = errorDocument(error.code, error.message, context);
  return { status: error.status, headers: { ...headers, 'content-type': 'application/xml' }, body };
}
