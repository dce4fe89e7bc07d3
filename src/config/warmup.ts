// The configuration of one `granary warmup`: the prefix to warm, the cache client options every client role shares
// (the --cache-* flags), and the warm-up's own; validated before anything is opened, every default documented.
import { z } from 'zod';
import { parseS3Url } from '../objectstore/s3-url';
import { cacheClientSchemaWith, cacheEnabled } from './cache';
import { LOG_LEVELS } from './log-levels';
import { parseConfig, type ConfigParser } from './parse';

/** Blocks loading at once by default: enough to keep a few cache servers busy filling from the origin. */
export const DEFAULT_WARMUP_CONCURRENCY = 16;

/** Most blocks loading at once that --concurrency accepts. */
export const MAX_WARMUP_CONCURRENCY = 1024;

/**
 * How long one load may take, headers included (ms): 2 minutes. A load answers only once the owner has the block,
 * which may mean a fill from the object store queued behind others, so a mount's 2 s would be far too short.
 */
export const LOAD_TIMEOUT_MS = 120_000;

const concurrencyProblem = (issue: { input?: unknown }) => `--concurrency must be a whole number from 1 to ${MAX_WARMUP_CONCURRENCY}, got "${String(issue.input)}"`;

/** Options of `granary warmup`. */
export const warmupConfigSchema = z
  .object({
    /** s3://BUCKET[/PREFIX]: every object under it is warmed. A local folder is not in any cache. */
    source: z
      .string()
      .trim()
      .superRefine((source, context) => {
        if (!/^s3:\/\//i.test(source)) {
          context.addIssue({ code: 'custom', message: `"${source}" is not an s3:// URL: give s3://BUCKET/PREFIX (warm-up loads objects of a bucket into the cluster cache; a local folder is never cached)` });
          return;
        }
        try {
          parseS3Url(source);
        } catch (error) {
          context.addIssue({ code: 'custom', message: (error as Error).message });
        }
      }),
    /**
     * The cluster cache to warm (the shared cache client options, src/config/cache.ts), which a warm-up must name,
     * with its token. An owner may take LOAD_TIMEOUT_MS (2 minutes) per load, not a mount's 2 s and 10 s.
     */
    cache: cacheClientSchemaWith({ headersTimeoutMs: LOAD_TIMEOUT_MS, requestTimeoutMs: LOAD_TIMEOUT_MS })
      .refine((cache) => cacheEnabled(cache), { message: 'say where the cache servers are: --cache-peers http://HOST:PORT,... or --cache-kubernetes-service NAME', path: ['peers'] })
      .refine((cache) => cache.metricsSocket === undefined, { message: '--cache-metrics-socket is a mount\'s: a warm-up prints its summary instead', path: ['metricsSocket'] })
      // With a cache named, the cache client options already ask for the token; without one, say it too (every problem at once).
      .refine((cache) => cacheEnabled(cache) || cache.tokenFile !== undefined, {
        message: '--cache-token-file is required: the cache servers answer only requests that carry the cluster token',
        path: ['tokenFile'],
      }),
    /** Blocks loading at once, 1 to MAX_WARMUP_CONCURRENCY (1,024); each owner gets as many connections. Default 16. */
    concurrency: z
      .number()
      .int({ error: concurrencyProblem })
      .min(1, { error: concurrencyProblem })
      .max(MAX_WARMUP_CONCURRENCY, { error: concurrencyProblem })
      .default(DEFAULT_WARMUP_CONCURRENCY),
    /**
     * Warm the ready cache servers even when others listed (or discovered) are not ready. Default false: a warm-up
     * into a smaller ring puts the missing servers' share on the others, where it is no use once they are back.
     */
    allowPartial: z.boolean().default(false),
    /** Print the summary as one JSON line on stdout instead of a table. Default false. */
    json: z.boolean().default(false),
    /** Log level of the JSON log on stderr. Default warn (progress and the summary are the output). */
    logLevel: z.enum(LOG_LEVELS).default('warn'),
  })
  .transform((config) => ({ ...config, ...parseS3Url(config.source) }));

/** A validated warm-up configuration: the source with its bucket and prefix (empty, or ending with `/`). */
export type WarmupConfig = z.output<typeof warmupConfigSchema>;

/** What a caller may pass; defaults fill the rest. */
export type WarmupConfigInput = z.input<typeof warmupConfigSchema>;

/** Validates `input` into a WarmupConfig; throws one readable error listing every problem ("invalid warm-up configuration: …"). */
export const parseWarmupConfig: ConfigParser<WarmupConfigInput, WarmupConfig> = parseConfig(warmupConfigSchema, 'warm-up');
