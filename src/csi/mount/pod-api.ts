// The few Kubernetes API calls mount Pods need, in one small interface so that MountPods can be tested
// with a fake (fake-pod-api.ts) and the real calls stay in one place.
import { ApiException, CoreV1Api, KubeConfig, type V1Pod, type V1Secret } from '@kubernetes/client-node';

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

/** Undefined for a 404 from the API server, the error otherwise. */
function unlessNotFound(error: unknown): undefined {
  if (error instanceof ApiException && error.code === NOT_FOUND) return undefined;
  throw error;
}

/** The PodApi of `namespace` through @kubernetes/client-node (in a pod: its service account, by KubeConfig.loadFromDefault). */
export function kubernetesPodApi(namespace: string, kubeConfig?: KubeConfig): PodApi {
  const config = kubeConfig ?? new KubeConfig();
  if (!kubeConfig) config.loadFromDefault();
  const core = config.makeApiClient(CoreV1Api);
  return {
    namespace,
    createPod: (body) => core.createNamespacedPod({ namespace, body }),
    readPod: (name) => core.readNamespacedPod({ name, namespace }).catch(unlessNotFound),
    listPods: async (labelSelector, nodeName) =>
      (await core.listNamespacedPod({ namespace, labelSelector, fieldSelector: `spec.nodeName=${nodeName}` })).items,
    deletePod: (name, gracePeriodSeconds) =>
      core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }).then(() => true, (error: unknown) => unlessNotFound(error) ?? false),
    podLog: (name, tailLines) => core.readNamespacedPodLog({ name, namespace, tailLines }).catch((error: unknown) => unlessNotFound(error) ?? ''),
    createSecret: async (body) => {
      await core.createNamespacedSecret({ namespace, body });
    },
    deleteSecret: (name) => core.deleteNamespacedSecret({ name, namespace }).then(() => true, (error: unknown) => unlessNotFound(error) ?? false),
  };
}
