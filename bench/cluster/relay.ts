// The object store as every side of the cluster bench sees it: through a counting TCP relay, so that the
// bytes read from the store are measured outside granary and rclone.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { stopProcess } from '../../e2e/support/process';
import type { RelayMessage, RelayRequest } from './relay-process';

/** The compiled relay script (the bench runs from dist/). */
export const RELAY_SCRIPT = path.join(__dirname, 'relay-process.js');

/** Longest the relay may take to listen, or to answer a count. */
export const RELAY_TIMEOUT_MS = 10_000;

/** A running relay process. */
export interface RelayProcess {
  /** http://127.0.0.1:PORT, the endpoint to give the sides. */
  readonly endpoint: string;
  /** Bytes the object store has sent through the relay so far (responses, headers included). */
  downstreamBytes(): Promise<number>;
  close(): Promise<void>;
}

/** Forks the relay in front of `target` and resolves once it listens. */
export async function startRelayProcess(target: { host: string; port: number }): Promise<RelayProcess> {
  const child: ChildProcess = fork(RELAY_SCRIPT, [target.host, String(target.port)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let nextId = 0;
  const waiting = new Map<number, (bytes: number) => void>();
  const failed = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`the counting relay exited (${code ?? signal})`)));
    child.once('error', reject);
  });
  failed.catch(() => undefined);
  const within = <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the counting relay did not ${what} within ${RELAY_TIMEOUT_MS / 1000} s`)), RELAY_TIMEOUT_MS); });
    return Promise.race([promise, failed, late]).finally(() => clearTimeout(timer));
  };
  const listening = new Promise<string>((resolve) => {
    child.on('message', (message: RelayMessage) => {
      if (message.type === 'listening') resolve(message.endpoint);
      else {
        waiting.get(message.id)?.(message.downstreamBytes);
        waiting.delete(message.id);
      }
    });
  });
  let endpoint: string;
  try {
    endpoint = await within(listening, 'listen');
  } catch (error) {
    await stopProcess(child, 0);
    throw error;
  }
  return {
    endpoint,
    downstreamBytes() {
      const id = nextId++;
      const answer = new Promise<number>((resolve) => waiting.set(id, resolve));
      child.send({ type: 'count', id } satisfies RelayRequest);
      return within(answer, 'report its count');
    },
    async close() {
      if (child.connected) child.send({ type: 'close' } satisfies RelayRequest);
      await stopProcess(child, 2000);
    },
  };
}
