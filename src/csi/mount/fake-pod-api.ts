import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { NextFailures } from './fake';
import type { PodApi } from './pod-api';

/** One call the fake API recorded. */
export interface FakePodApiCall {
  method: 'createPod' | 'deletePod' | 'createSecret' | 'deleteSecret';
  name: string;
  gracePeriodSeconds?: number;
}

/**
 * An in-memory namespace of Pods and Secrets for unit tests: it keeps what is created (with a uid), lists by
 * label selector and node like the API server, and lets a test play the kubelet (`onCreatePod`, `setPhase`).
 */
export class FakePodApi implements PodApi {
  readonly pods = new Map<string, V1Pod>();
  readonly secrets = new Map<string, V1Secret>();
  /** Every change requested, in order. */
  readonly calls: FakePodApiCall[] = [];
  /** Log text per Pod name. */
  readonly logs = new Map<string, string>();
  /** Called after a Pod is created: the test's kubelet (mount something, set a phase). */
  onCreatePod: (pod: V1Pod) => void = () => undefined;
  /** Called after a Pod is deleted (the holder unmounting on SIGTERM, say). */
  onDeletePod: (pod: V1Pod) => void = () => undefined;
  private nextUid = 1;
  private readonly failures = new NextFailures<'createPod' | 'createSecret'>();

  constructor(readonly namespace = 'granary') {}

  async createPod(pod: V1Pod): Promise<V1Pod> {
    this.failures.throwIfSet('createPod');
    const name = pod.metadata?.name ?? '';
    this.calls.push({ method: 'createPod', name });
    if (this.pods.has(name)) throw new Error(`pods "${name}" already exists`);
    const stored: V1Pod = structuredClone({ ...pod, metadata: { ...pod.metadata, namespace: this.namespace, uid: `uid-${this.nextUid++}` }, status: { phase: 'Pending' } });
    this.pods.set(name, stored);
    this.onCreatePod(stored);
    return structuredClone(stored);
  }

  async readPod(name: string): Promise<V1Pod | undefined> {
    const pod = this.pods.get(name);
    return pod ? structuredClone(pod) : undefined;
  }

  async listPods(labelSelector: string, nodeName: string): Promise<V1Pod[]> {
    const wanted = labelSelector.split(',').map((pair) => pair.split('=') as [string, string]);
    return [...this.pods.values()]
      .filter((pod) => pod.spec?.nodeName === nodeName && wanted.every(([key, value]) => pod.metadata?.labels?.[key] === value))
      .map((pod) => structuredClone(pod));
  }

  async deletePod(name: string, gracePeriodSeconds: number): Promise<boolean> {
    this.calls.push({ method: 'deletePod', name, gracePeriodSeconds });
    const pod = this.pods.get(name);
    if (!pod) return false;
    this.pods.delete(name);
    this.onDeletePod(pod);
    return true;
  }

  async podLog(name: string, tailLines: number): Promise<string> {
    return (this.logs.get(name) ?? '').split('\n').slice(-tailLines).join('\n');
  }

  async createSecret(secret: V1Secret): Promise<void> {
    this.failures.throwIfSet('createSecret');
    const name = secret.metadata?.name ?? '';
    this.calls.push({ method: 'createSecret', name });
    this.secrets.set(name, structuredClone(secret));
  }

  async deleteSecret(name: string): Promise<boolean> {
    this.calls.push({ method: 'deleteSecret', name });
    return this.secrets.delete(name);
  }

  /** Sets a Pod's phase (and optionally its container's state), as the kubelet reports it. */
  setStatus(name: string, status: NonNullable<V1Pod['status']>): void {
    const pod = this.pods.get(name);
    if (pod) pod.status = status;
  }

  /** Adds a Pod as if an earlier node plugin had created it. */
  addPod(pod: V1Pod): void {
    this.pods.set(pod.metadata?.name ?? '', structuredClone(pod));
  }

  /** Makes the next call of `method` throw `error`. */
  failNext(method: 'createPod' | 'createSecret', error: Error): void {
    this.failures.set(method, error);
  }
}
