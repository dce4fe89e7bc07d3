import { silentLogger } from '../../log/logger';
import { NoPeers } from '../ring';
import type { Probe } from './membership';
import { parsePeerList, peerUrl, staticMembership } from './static';

const GiB = 2 ** 30;

describe('parsePeerList', () => {
  it('splits on commas, trims, drops empties and duplicates, and writes every URL as scheme://host:port', () => {
    expect(parsePeerList(' http://10.0.0.1:8470/ , ,http://10.0.0.2:8470,http://10.0.0.1:8470,')).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8470']);
  });

  it('is empty for an empty flag', () => {
    expect(parsePeerList('')).toEqual([]);
    expect(parsePeerList(' , ')).toEqual([]);
  });

  it('keeps an explicit default port, lower-cases the host and keeps IPv6 brackets', () => {
    expect(parsePeerList('http://Cache-0.Cache:80,https://[fd00::1]:443/')).toEqual(['http://cache-0.cache:80', 'https://[fd00::1]:443']);
  });

  it.each([
    ['10.0.0.1:8470', /"10\.0\.0\.1:8470" does not start with http:\/\/ or https:\/\//],
    ['cache-0.cache:8470', /does not start with http:\/\/ or https:\/\//],
    ['http://', /"http:\/\/" is not a URL/],
    ['ftp://10.0.0.1:21', /uses ftp, not http or https/],
    ['http://10.0.0.1', /"http:\/\/10\.0\.0\.1" has no port/],
    ['https://cache.example/', /has no port/],
    ['http://10.0.0.1:8470/v1', /has a path \(\/v1\)/],
    ['http://10.0.0.1:8470?x=1', /has a query or fragment/],
    ['http://10.0.0.1:8470/#top', /has a query or fragment/],
  ])('rejects %s, saying what is wrong and how to write it', (value, problem) => {
    expect(() => parsePeerList(`http://10.0.0.9:8470,${value}`)).toThrow(problem);
    expect(() => parsePeerList(value)).toThrow(/give each cache server as http\(s\):\/\/HOST:PORT with no path or query, for example http:\/\/10\.0\.0\.5:8470/);
  });

  it('rejects credentials in a URL without repeating them', () => {
    let message = '';
    try {
      peerUrl('http://admin:hunter2@10.0.0.1:8470');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/carries a user name or password/);
    expect(message).not.toContain('hunter2');
  });
});

describe('staticMembership', () => {
  it('rejects a malformed peer before probing anything', () => {
    const probe = jest.fn<ReturnType<Probe>, Parameters<Probe>>();
    expect(() => staticMembership(['http://10.0.0.1:8470', 'http://10.0.0.2'], probe, silentLogger())).toThrow(/"http:\/\/10\.0\.0\.2" has no port/);
    expect(probe).not.toHaveBeenCalled();
  });

  it('probes the listed servers and rings those that answer, under their canonical URLs', async () => {
    const probed: string[] = [];
    const probe: Probe = async (url) => {
      probed.push(url);
      if (url === 'http://10.0.0.2:8470') throw new Error('connect ECONNREFUSED');
      return { capacityBytes: 2 * GiB };
    };
    const membership = staticMembership(['http://10.0.0.1:8470/', 'http://10.0.0.2:8470', 'http://10.0.0.1:8470'], probe, silentLogger());
    try {
      await membership.ready();
      expect(probed.sort()).toEqual(['http://10.0.0.1:8470', 'http://10.0.0.2:8470']);
      expect(membership.picker().members).toEqual([{ url: 'http://10.0.0.1:8470', weight: 2 }]);
    } finally {
      membership.close();
    }
  });

  it('is ready at once with NoPeers for an empty list', async () => {
    const membership = staticMembership([], () => Promise.reject(new Error('never called')), silentLogger());
    try {
      await membership.ready();
      expect(membership.picker()).toBe(NoPeers);
    } finally {
      membership.close();
    }
  });
});
