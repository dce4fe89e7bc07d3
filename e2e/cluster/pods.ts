import type { ClusterNode } from './node';

/** How a run-to-completion Pod ended. */
export interface PodResult {
  readonly phase: string;
  readonly exitCode: number | undefined;
  readonly logs: string;
  readonly uid: string;
  /** Seconds from creation to the container having started (or finished). */
  readonly startSeconds: number;
}

interface PodStatus {
  status: {
    phase?: string;
    containerStatuses?: { state?: { running?: { startedAt: string }; terminated?: { exitCode: number; startedAt: string } } }[];
  };
}

/** Deadline for a test Pod to finish (image present, so this is start-up and the command itself). */
export const POD_TIMEOUT_MS = 180_000;

/** A Pod created by startPod: its uid, and its end. */
export interface StartedPod {
  readonly uid: string;
  /** Polls until the Pod has Succeeded or Failed and returns how it ended. */
  finished(): Promise<PodResult>;
}

/** Creates a Pod of one container that runs to completion (restartPolicy Never, images never pulled), in `namespace`. */
export async function startPod(node: ClusterNode, name: string, container: Record<string, unknown>,
  spec: Record<string, unknown> = {}, namespace = 'default'): Promise<StartedPod> {
  const created = Date.now();
  const { stdout: uid } = await node.kubectl(['create', '-f', '-', '-o', 'jsonpath={.metadata.uid}'], JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, ...spec, containers: [{ name: 'main', imagePullPolicy: 'Never', ...container }] },
  }));
  const finished = async (): Promise<PodResult> => {
    const deadline = created + POD_TIMEOUT_MS;
    let startSeconds: number | undefined;
    for (;;) {
      const pod = JSON.parse((await node.kubectl(['get', 'pod', name, '-n', namespace, '-o', 'json'])).stdout) as PodStatus;
      const state = pod.status.containerStatuses?.[0]?.state;
      if (startSeconds === undefined && (state?.running || state?.terminated)) startSeconds = (Date.now() - created) / 1000;
      if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') {
        const { stdout: logs } = await node.kubectl(['logs', name, '-n', namespace]);
        return { phase: pod.status.phase, exitCode: state?.terminated?.exitCode, logs, uid, startSeconds: startSeconds ?? 0 };
      }
      if (Date.now() > deadline) {
        const { stdout: events } = await node.kubectl(['get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name}`]);
        throw new Error(`pod ${name} did not finish in ${POD_TIMEOUT_MS / 1000} s (phase ${pod.status.phase}); its events:\n${events}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  return { uid, finished };
}

/** Runs a Pod of one container to completion (startPod, then finished). */
export async function runPod(node: ClusterNode, name: string, container: Record<string, unknown>,
  spec: Record<string, unknown> = {}, namespace = 'default'): Promise<PodResult> {
  return (await startPod(node, name, container, spec, namespace)).finished();
}
