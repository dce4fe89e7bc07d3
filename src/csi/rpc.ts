import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger';
import { toCsiError } from './errors';

/** What every RPC implementation receives besides its request. */
export interface RpcContext {
  /** A child logger carrying the method, a request id and the volume id. */
  log: Logger;
}

/** One CSI method as a plain async function: easy to call from tests without gRPC. */
export type Rpc<Request, Response> = (request: Request, context: RpcContext) => Promise<Response>;


/** Replaces every secret in a request before it is logged: the `secrets` maps and any field the spec marks csi_secret. */
export function redactRequest(request: unknown): unknown {
  if (request === null || typeof request !== 'object') return request;
  if (Array.isArray(request)) return request.map(redactRequest);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request as Record<string, unknown>)) {
    if (key === 'secrets' || key.endsWith('_secrets')) {
      out[key] = value && typeof value === 'object' ? Object.fromEntries(Object.keys(value).map((k) => [k, '[redacted]'])) : '[redacted]';
    } else {
      out[key] = redactRequest(value);
    }
  }
  return out;
}

/** Wraps an Rpc as a gRPC unary handler: one log line per failed call (secrets redacted), CsiError → status. */
export function unaryHandler<Request, Response>(method: string, rpc: Rpc<Request, Response>, logger: Logger): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const request = call.request;
    const volumeId = (request as { volume_id?: unknown }).volume_id;
    const log = logger.child({ method, requestId: randomUUID().slice(0, 8), ...(volumeId ? { volumeId } : {}) });
    const started = Date.now();
    rpc(request, { log }).then(
      (response) => {
        log.debug({ ms: Date.now() - started }, 'rpc ok');
        callback(null, response);
      },
      (thrown: unknown) => {
        const error = toCsiError(thrown, method);
        const level = error.code === 'INTERNAL' || error.code === 'UNKNOWN' ? 'error' : 'warn';
        log[level]({ code: error.code, ms: Date.now() - started, request: redactRequest(request), err: error.cause ?? error }, error.message);
        callback({ code: error.status, details: error.message });
      },
    );
  };
}
