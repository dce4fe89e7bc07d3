import { peersListSelf, selfMissingWarning, type SelfAddress } from './self';

/** A node with one pod address, named node-a, where `names` resolve as given. */
const node = (listenHost: string, names: Record<string, string[]> = {}): SelfAddress => ({
  listenHost,
  port: 7070,
  interfaceAddresses: ['127.0.0.1', '::1', '10.0.0.5', 'fe80::1'],
  hostname: 'node-a.cluster.internal',
  resolve: async (name) => names[name] ?? [],
});

describe('peersListSelf', () => {
  it('finds a wildcard listener by any interface address, its host name or a name that resolves to it, on its port', async () => {
    expect(await peersListSelf(['http://10.0.0.4:7070', 'http://10.0.0.5:7070'], node('0.0.0.0'))).toBe(true);
    expect(await peersListSelf(['http://node-a:7070'], node('0.0.0.0'))).toBe(true);
    expect(await peersListSelf(['http://node-a.cluster.internal:7070'], node('::'))).toBe(true);
    expect(await peersListSelf(['http://cache-0.cache.svc:7070'], node('0.0.0.0', { 'cache-0.cache.svc': ['10.0.0.5'] }))).toBe(true);
    expect(await peersListSelf(['http://[fe80::1]:7070'], node('0.0.0.0'))).toBe(true);
    expect(await peersListSelf(['http://127.0.0.11:7070'], node('0.0.0.0'))).toBe(true);
  });

  it('does not find it when no peer has its address and port', async () => {
    expect(await peersListSelf(['http://10.0.0.5:7071', 'http://10.0.0.6:7070'], node('0.0.0.0'))).toBe(false);
    expect(await peersListSelf(['http://cache-1.cache.svc:7070'], node('0.0.0.0', { 'cache-1.cache.svc': ['10.0.0.6'] }))).toBe(false);
    expect(await peersListSelf(['http://unresolvable:7070'], { ...node('0.0.0.0'), resolve: async () => Promise.reject(new Error('ENOTFOUND')) })).toBe(false);
  });

  it('compares a specific listen address only with that address', async () => {
    expect(await peersListSelf(['http://10.0.0.5:7070'], node('10.0.0.5'))).toBe(true);
    expect(await peersListSelf(['http://10.0.0.5:7070'], node('127.0.0.1'))).toBe(false);
    expect(await peersListSelf(['http://localhost:7070'], node('127.0.0.1', { localhost: ['127.0.0.1'] }))).toBe(true);
  });
});

describe('selfMissingWarning', () => {
  it('names --peers, the listen address and the list', () => {
    expect(selfMissingWarning('0.0.0.0:7070', ['http://10.0.0.6:7070'])).toMatch(/^--peers does not list this cache server \(listening on 0\.0\.0\.0:7070; --peers http:\/\/10\.0\.0\.6:7070\)/);
  });
});
