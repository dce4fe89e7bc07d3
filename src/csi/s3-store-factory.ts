import { S3Store, type S3StoreOptions } from '../objectstore/s3';
import type { StoreFactory } from './controller';

/** Per-request tries of the controller's stores: fewer than the store's default, to answer within the CO's deadline. */
export const CONTROLLER_MAX_ATTEMPTS = 3;

/**
 * Idle timeout of one request of the controller's stores. csi-provisioner gives each CSI call
 * 10 s by default (--timeout) and retries after that; a controller still waiting past it only
 * earns ABORTED for the retry, so a dead endpoint should fail well inside that window.
 */
export const CONTROLLER_REQUEST_TIMEOUT_MS = 5_000;

/** Store options the controller applies below each request's secrets (which win for endpoint, region, credentials). */
export type S3FactoryDefaults = Pick<S3StoreOptions, 'endpoint' | 'region' | 'forcePathStyle' | 'maxAttempts' | 'requestTimeoutMs'>;

/**
 * The production store factory: a fresh S3Store per call, closed by the controller when the call
 * ends. Nothing is cached, so no credentials outlive the request that carried them, and nothing
 * here logs: the store's `location` names endpoint and bucket only.
 */
export function s3StoreFactory(defaults: S3FactoryDefaults = {}): StoreFactory {
  return (bucket, settings) =>
    new S3Store({
      maxAttempts: CONTROLLER_MAX_ATTEMPTS,
      requestTimeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS,
      ...defaults,
      bucket,
      ...settings,
    });
}
