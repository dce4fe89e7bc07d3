// The few Kubernetes API calls mount Pods need, in one small interface so that MountPods can be tested
// with a fake (fake-pod-api.ts) and the real calls stay in one place.
import type { CoreV1Api, KubeConfig, V1Pod, V1Secret } from '@kubernetes/client-node';

/** Pods and Secrets of one namespace, as MountPods manages them; "not found" is an answer, not an error. */
export interface PodApi {
  /** The namespace every call works in. */
  readonly namespace: string;
  /** Creates a Pod and returns it as stored (with its uid). */
  createPod(pod: V1Pod): Promise<V1Pod>;
  /** The Pod called `name`, or undefined when there is none. */
  readPod(name: string): Promise<V1Pod | undefined>;
  /** The Pods with every label of `labelSelector` on node `nodeName`. */
  listPods(labelSelector: string, nodeName: string): Promise<V1Pod[]>;
  /** Deletes a Pod, giving it `gracePeriodSeconds` to stop; false when it did not exist. */
  deletePod(name: string, gracePeriodSeconds: number): Promise<boolean>;
  /** The last `tailLines` lines of a Pod's container log ('' when there is none yet). */
  podLog(name: string, tailLines: number): Promise<string>;
  /** Creates a Secret. */
  createSecret(secret: V1Secret): Promise<void>;
  /** Deletes a Secret; false when it did not exist. */
  deleteSecret(name: string): Promise<boolean>;
}

/** HTTP status of a missing object. */
const NOT_FOUND = 404;

/** Undefined for a 404 from the API server (client-node's ApiException carries the HTTP status as `code`), the error otherwise. */
function unlessNotFound(error: unknown): undefined {
  if ((error as { code?: unknown } | undefined)?.code === NOT_FOUND) return undefined;
  throw error;
}

/**
 * The PodApi of `namespace` through @kubernetes/client-node (in a pod: its service account, by KubeConfig.loadFromDefault).
 * The client is loaded on first use: it is an ES module, and the node plugin in process mode never needs it.
 */
export function kubernetesPodApi(namespace: string, kubeConfig?: KubeConfig): PodApi {
  let client: Promise<CoreV1Api> | undefined;
  const connect = async (): Promise<CoreV1Api> => {
    const { CoreV1Api: Api, KubeConfig: Config } = await import('@kubernetes/client-node');
    const config = kubeConfig ?? new Config();
    if (!kubeConfig) config.loadFromDefault();
    return config.makeApiClient(Api);
  };
  const api = () => (client ??= connect());
  return {
    namespace,
    createPod: async (body) => (await api()).createNamespacedPod({ namespace, body }),
    readPod: async (name) => (await api()).readNamespacedPod({ name, namespace }).catch(unlessNotFound),
    listPods: async (labelSelector, nodeName) =>
      (await (await api()).listNamespacedPod({ namespace, labelSelector, fieldSelector: `spec.nodeName=${nodeName}` })).items,
    deletePod: async (name, gracePeriodSeconds) =>
      (await api()).deleteNamespacedPod({ name, namespace, gracePeriodSeconds }).then(() => true, (error: unknown) => unlessNotFound(error) ?? false),
    podLog: async (name, tailLines) => (await api()).readNamespacedPodLog({ name, namespace, tailLines }).catch((error: unknown) => unlessNotFound(error) ?? ''),
    createSecret: async (body) => {
      await (await api()).createNamespacedSecret({ namespace, body });
    },
    deleteSecret: async (name) => (await api()).deleteNamespacedSecret({ name, namespace }).then(() => true, (error: unknown) => unlessNotFound(error) ?? false),
  };
}
