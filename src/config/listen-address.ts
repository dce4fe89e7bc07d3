// HOST:PORT listen addresses ([v6]:PORT too), checked the same way for every server a role runs.
import { z } from 'zod';

/** A HOST:PORT address to listen on, e.g. 0.0.0.0:7070 or [::]:7070; `example` is shown when it is malformed. */
export function listenAddressSchema(example: string) {
  return z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, `write HOST:PORT, e.g. ${example}`)
    .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535');
}

/** The host (without IPv6 brackets) and port of a HOST:PORT address listenAddressSchema accepted. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  return { host: listen.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(listen.slice(colon + 1)) };
}
