import * as path from 'node:path';
import { readPathSchema } from './read-path';
import { writePathSchema } from './write-path';
import { defaultStateDir, parseMountConfig, readyFdFromEnv } from './mount';

describe('MountConfig', () => {
  it('fills every default and makes the mountpoint absolute', () => {
    const config = parseMountConfig({ source: 's3://bucket/prefix', mountpoint: 'mnt' });
    expect(config).toEqual({
      source: 's3://bucket/prefix',
      mountpoint: path.resolve('mnt'),
      readOnly: false,
      uid: 0,
      gid: 0,
      fileMode: 0o666,
      dirMode: 0o777,
      renameConcurrency: 16,
      logLevel: 'info',
      attrTimeoutMs: 1000,
      cache: { peers: [], blockSize: 4 * 1024 * 1024, headersTimeoutMs: 2000, requestTimeoutMs: 10_000 },
      listPageSize: 1000,
      lookupListPages: 2,
      negativeLookupMs: 0,
      prefetchListings: 16,
      subtype: 'granary',
      fuse: { deviceReaders: 4, threadpoolSize: 20, maxBackground: 64, maxReadahead: 1024 * 1024, unmountTimeoutMs: 10_000 },
      deadlines: { metadataMs: 30_000, readMs: 60_000, writeMs: 60_000 },
      read: readPathSchema.parse({}),
      write: writePathSchema.parse({}),
    });
  });

  it('rejects what cannot work, naming each problem', () => {
    expect(() => parseMountConfig({ source: ' ', mountpoint: '' })).toThrow(/source: SOURCE is empty.*mountpoint: MOUNTPOINT is empty/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', logLevel: 'loud' as 'info' })).toThrow(/logLevel/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', fuse: { deviceReaders: 8, threadpoolSize: 10 } })).toThrow(/threadpoolSize must exceed/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', readyFd: 1 })).toThrow(/readyFd/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', fileMode: 0o10000, uid: -1 })).toThrow(/uid.*fileMode|fileMode.*uid/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', read: { blockSizeBytes: 1 } })).toThrow(/read\.blockSizeBytes/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', write: { partSizeBytes: 1 } })).toThrow(/write\.partSizeBytes/);
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', deadlines: { metadataMs: 0, readMs: 1.5 } })).toThrow(/deadlines\.metadataMs.*deadlines\.readMs/);
  });

  it('takes a state directory, made absolute; none unless given (the CLI passes defaultStateDir)', () => {
    expect(parseMountConfig({ source: 's3://b/p', mountpoint: '/m' }).stateDir).toBeUndefined();
    expect(parseMountConfig({ source: 's3://b/p', mountpoint: '/m', stateDir: 'state' }).stateDir).toBe(path.resolve('state'));
    expect(() => parseMountConfig({ source: 's3://b/p', mountpoint: '/m', stateDir: '' })).toThrow(/stateDir/);
  });

  it('puts the default state directory under XDG_STATE_HOME (else ~/.local/state), one per source and mountpoint', () => {
    const home = { HOME: '/home/ml' };
    const dir = defaultStateDir('s3://bucket/team/', '/mnt/data', home);
    expect(dir).toMatch(/^\/home\/ml\/\.local\/state\/granary\/mounts\/[0-9a-f]{16}$/);
    expect(defaultStateDir('s3://bucket/team/', '/mnt/data', { ...home, XDG_STATE_HOME: '/var/state' })).toBe(`/var/state/granary/mounts/${path.basename(dir)}`);
    // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
    expect(defaultStateDir('s3://bucket/team/', '/mnt/data', { ...home, XDG_STATE_HOME: 'state' })).toBe(dir);
    expect(defaultStateDir('s3://bucket/team/', '/mnt/data/', home)).toBe(dir);
    expect(defaultStateDir('s3://bucket/other/', '/mnt/data', home)).not.toBe(dir);
    expect(defaultStateDir('s3://bucket/team/', '/mnt/data2', home)).not.toBe(dir);
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    expect(defaultStateDir('s3://b/a', '/x', home)).not.toBe(defaultStateDir('s3://b/', 'a/x', home));
  });

  it.each([
    ['fileMode', 0o4755, 'fileMode: file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755'],
    ['fileMode', 0o2644, 'fileMode: file-mode 2644 sets the setgid bit'],
    ['dirMode', 0o1777, 'dirMode: dir-mode 1777 sets the sticky bit; granary never mounts setuid, setgid or sticky directories: use 0777'],
  ])('refuses %s %o: modes are permission bits only', (field, mode, message) => {
    expect(() => parseMountConfig({ source: 'x', mountpoint: '/m', [field]: mode })).toThrow(message);
  });

  it('accepts every permission-bit mode up to 0777', () => {
    expect(parseMountConfig({ source: 'x', mountpoint: '/m', fileMode: 0o777, dirMode: 0o750 })).toMatchObject({ fileMode: 0o777, dirMode: 0o750 });
  });

  it('reads the ready fd from GRANARY_READY_FD', () => {
    expect(readyFdFromEnv({})).toBeUndefined();
    expect(readyFdFromEnv({ GRANARY_READY_FD: '3' })).toBe(3);
    expect(() => readyFdFromEnv({ GRANARY_READY_FD: 'stdout' })).toThrow(/not an inherited file descriptor/);
  });
});
