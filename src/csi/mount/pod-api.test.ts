import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { kubernetesPodApi } from './pod-api';

// @kubernetes/client-node 1.x is an ES module: Node (>= 20.19) require()s it, jest's module registry cannot,
// so the tests hand jest the module as Node itself loads it.
jest.mock('@kubernetes/client-node', () => process.getBuiltinModule('node:module').createRequire(__filename)('@kubernetes/client-node'));

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** A stand-in API server: records each request and answers from `answer` (404 for what it does not know). */
async function apiServer(answer: (request: Seen) => { status: number; body: unknown } | undefined): Promise<{ seen: Seen[]; port: number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const entry = { method: request.method ?? '', url: request.url ?? '', body };
      seen.push(entry);
      const reply = answer(entry) ?? { status: 404, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 } };
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      response.writeHead(reply.status, { 'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json' }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { seen, port: (server.address() as AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function kubeConfigFor(port: number): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'node', token: 'service-account-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'node' }],
    currentContext: 'fake',
  });
  return kubeConfig;
}

describe('kubernetesPodApi', () => {
  it('calls the API server paths of one namespace, lists by labels and node, and takes a 404 for "not there"', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'granary-mount-a', namespace: 'granary', uid: 'u1' } };
    const server = await apiServer(({ method, url }) => {
      if (method === 'POST' && url.startsWith('/api/v1/namespaces/granary/pods')) return { status: 201, body: pod };
      if (method === 'GET' && url.startsWith('/api/v1/namespaces/granary/pods?')) return { status: 200, body: { apiVersion: 'v1', kind: 'PodList', metadata: {}, items: [pod] } };
      if (method === 'GET' && url.startsWith('/api/v1/namespaces/granary/pods/granary-mount-a/log')) return { status: 200, body: 'last line' };
      if (method === 'DELETE' && url.startsWith('/api/v1/namespaces/granary/pods/granary-mount-a')) return { status: 200, body: pod };
      if (method === 'POST' && url.startsWith('/api/v1/namespaces/granary/secrets')) return { status: 201, body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'granary-mount-a' } } };
      return undefined;
    });
    try {
      const api = kubernetesPodApi('granary', kubeConfigFor(server.port));
      expect(await api.createPod(pod)).toMatchObject({ metadata: { uid: 'u1' } });
      expect(await api.listPods('app.kubernetes.io/component=mount,csi.granary.dev/node=n1', 'n1')).toHaveLength(1);
      expect(await api.podLog('granary-mount-a', 20)).toBe('last line');
      expect(await api.deletePod('granary-mount-a', 30)).toBe(true);
      expect(await api.deletePod('granary-mount-gone', 30)).toBe(false);
      expect(await api.readPod('granary-mount-gone')).toBeUndefined();
      await api.createSecret({ metadata: { name: 'granary-mount-a' }, stringData: { AWS_SECRET_ACCESS_KEY: 'S' } });
      expect(await api.deleteSecret('granary-mount-gone')).toBe(false);

      const list = new URL(server.seen.find((request) => request.url.startsWith('/api/v1/namespaces/granary/pods?'))!.url, 'http://x');
      expect(list.searchParams.get('labelSelector')).toBe('app.kubernetes.io/component=mount,csi.granary.dev/node=n1');
      expect(list.searchParams.get('fieldSelector')).toBe('spec.nodeName=n1');
      expect(new URL(server.seen.find((request) => request.url.includes('/log'))!.url, 'http://x').searchParams.get('tailLines')).toBe('20');
      const deletion = server.seen.find((request) => request.method === 'DELETE')!;
      expect(new URL(deletion.url, 'http://x').searchParams.get('gracePeriodSeconds')).toBe('30');
    } finally {
      await server.close();
    }
  });

  it('passes on errors other than 404', async () => {
    const server = await apiServer(() => ({ status: 403, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods is forbidden' } }));
    try {
      const api = kubernetesPodApi('granary', kubeConfigFor(server.port));
      await expect(api.readPod('a')).rejects.toMatchObject({ code: 403 });
      await expect(api.listPods('a=b', 'n1')).rejects.toMatchObject({ code: 403 });
    } finally {
      await server.close();
    }
  });
});
