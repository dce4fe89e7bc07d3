import { cacheClientSchema } from '../../config/cache';
import { cacheFlags, mountArguments } from './mount-arguments';

const NODE_CACHE = ['--cache-peers', 'http://10.0.0.5:7070', '--cache-token-file', '/var/run/granary/token', '--cache-block-size', '4194304'];

function invalid(message: RegExp) {
  return expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
}

describe('cacheFlags', () => {
  it('is empty when the node names no cache', () => {
    expect(cacheFlags(cacheClientSchema.parse({}))).toEqual([]);
  });

  it('gives peers, the token file path and the block size', () => {
    const config = cacheClientSchema.parse({ peers: ['http://10.0.0.5:7070', 'http://10.0.0.6:7070'], tokenFile: '/var/run/granary/token', blockSize: 8 * 1024 * 1024 });
    expect(cacheFlags(config)).toEqual(['--cache-peers', 'http://10.0.0.5:7070,http://10.0.0.6:7070', '--cache-token-file', '/var/run/granary/token', '--cache-block-size', '8388608']);
  });

  it('gives the Service and its namespace for Kubernetes discovery', () => {
    const config = cacheClientSchema.parse({ kubernetesService: 'granary-cache', kubernetesNamespace: 'storage', tokenFile: '/t' });
    expect(cacheFlags(config)).toEqual(['--cache-kubernetes-service', 'granary-cache', '--cache-kubernetes-namespace', 'storage', '--cache-token-file', '/t', '--cache-block-size', '4194304']);
  });
});

describe('mountArguments', () => {
  it('gives the node cache flags when the volume uses the cache, or does not say (a static PV)', () => {
    expect(mountArguments({ cache: 'true' }, NODE_CACHE)).toEqual(NODE_CACHE);
    expect(mountArguments({}, NODE_CACHE)).toEqual(NODE_CACHE);
    expect(mountArguments(undefined, NODE_CACHE)).toEqual(NODE_CACHE);
  });

  it('leaves the cache out when the volume turns it off', () => {
    expect(mountArguments({ cache: 'false' }, NODE_CACHE)).toEqual([]);
  });

  it('gives no cache flags when the node has no cache, whatever the volume asks', () => {
    expect(mountArguments({ cache: 'true' }, [])).toEqual([]);
  });

  it('refuses a cache value other than true or false', () => {
    expect(() => mountArguments({ cache: 'yes' }, NODE_CACHE)).toThrow(invalid(/volume_context cache must be true or false, not "yes"/));
  });

  it.each([
    ['uid=1234', ['--uid', '1234']],
    ['uid=0', ['--uid', '0']],
    ['gid=4294967294', ['--gid', '4294967294']],
    ['uid=007', ['--uid', '7']],
    ['file-mode=0640', ['--file-mode', '0640']],
    ['file-mode=444', ['--file-mode', '444']],
    ['dir-mode=0755', ['--dir-mode', '0755']],
    ['dir-mode=0777', ['--dir-mode', '0777']],
    ['log-level=debug', ['--log-level', 'debug']],
    ['metadata-deadline=10000', ['--metadata-deadline', '10000']],
    ['read-deadline=0300000', ['--read-deadline', '300000']],
    ['write-deadline=600000', ['--write-deadline', '600000']],
  ])('maps the mount option %s to its granary mount flag', (option, flags) => {
    expect(mountArguments({ cache: 'false', mountOptions: option }, NODE_CACHE)).toEqual(flags);
  });

  it('puts the cache flags first, then the options in the order given (spaces around commas tolerated)', () => {
    expect(mountArguments({ mountOptions: 'file-mode=0640, uid=1234 ,gid=2000' }, NODE_CACHE)).toEqual([...NODE_CACHE, '--file-mode', '0640', '--uid', '1234', '--gid', '2000']);
  });

  it.each([
    ['an unknown option', 'uid=1,allow-other', /volume_context mountOptions has the unknown option "allow-other"; granary accepts uid=\.\.\., gid=\.\.\., file-mode=\.\.\., dir-mode=\.\.\., log-level=\.\.\., metadata-deadline=\.\.\., read-deadline=\.\.\., write-deadline=\.\.\./],
    ['an option that looks like a flag', '--read-only', /unknown option "--read-only"/],
    ['an option without its value', 'uid', /option "uid" is invalid: uid takes a user id from 0 to 4294967294/],
    ['an empty value', 'gid=', /option "gid=" is invalid: gid takes a group id/],
    ['a negative id', 'uid=-1', /option "uid=-1" is invalid/],
    ['a name for an id', 'uid=root', /option "uid=root" is invalid/],
    ['an id too big', 'gid=4294967295', /option "gid=4294967295" is invalid/],
    ['a decimal mode', 'file-mode=0999', /option "file-mode=0999" is invalid: file-mode takes octal permission bits such as 0644/],
    ['a mode too long', 'dir-mode=077777', /option "dir-mode=077777" is invalid/],
    ['a sticky directory mode', 'dir-mode=1777', /option "dir-mode=1777" is invalid: dir-mode 1777 sets the sticky bit; granary never mounts setuid, setgid or sticky directories: use 0777$/],
    ['a setuid file mode', 'file-mode=4755', /option "file-mode=4755" is invalid: file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755$/],
    ['an unknown log level', 'log-level=verbose', /option "log-level=verbose" is invalid: log-level takes one of fatal, error, warn, info, debug, trace, silent/],
    ['a deadline below 100 ms', 'read-deadline=99', /option "read-deadline=99" is invalid: read-deadline takes milliseconds from 100 to 86400000 \(a day\)/],
    ['a deadline with a unit', 'write-deadline=60s', /option "write-deadline=60s" is invalid/],
    ['an option given twice', 'uid=1,uid=2', /volume_context mountOptions sets uid more than once/],
    ['an empty option', 'uid=1,,gid=2', /must be comma-separated options of the form name or name=value; "" is not/],
    ['a space inside an option', 'uid=1 gid=2', /"uid=1 gid=2" is not/],
  ])('refuses %s with INVALID_ARGUMENT', (_, mountOptions, message) => {
    expect(() => mountArguments({ mountOptions }, NODE_CACHE)).toThrow(invalid(message));
  });
});
