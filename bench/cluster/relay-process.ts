// The counting TCP relay (e2e/support/tcp-relay.ts) in a process of its own, so that the bytes it copies
// cost the bench's event loop nothing. Started by relay.ts with the target as argv; talks over IPC.
import { startCountingRelay } from '../../e2e/support/tcp-relay';

/** Parent → relay: report the counters, or close and exit. */
export type RelayRequest = { type: 'count'; id: number } | { type: 'close' };

/** Relay → parent: listening at `endpoint`; the counters asked for. */
export type RelayMessage = { type: 'listening'; endpoint: string } | { type: 'count'; id: number; downstreamBytes: number; upstreamBytes: number };

async function main(): Promise<void> {
  const [host, port] = process.argv.slice(2);
  if (!host || !port || !process.send) throw new Error('usage: relay-process HOST PORT (forked with an IPC channel)');
  const relay = await startCountingRelay({ host, port: Number(port) });
  const send = (message: RelayMessage) => process.send?.(message);
  process.on('message', (request: RelayRequest) => {
    if (request.type === 'count') send({ type: 'count', id: request.id, downstreamBytes: relay.downstreamBytes, upstreamBytes: relay.upstreamBytes });
    else void relay.close().finally(() => process.exit(0));
  });
  // The parent gone (even SIGKILLed) means nobody counts any more.
  process.on('disconnect', () => void relay.close().finally(() => process.exit(0)));
  send({ type: 'listening', endpoint: relay.endpoint });
}

main().catch((error: unknown) => {
  process.stderr.write(`relay: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
