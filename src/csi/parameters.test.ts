import { MAX_VOLUME_ID_BYTES, formatVolumeId } from './volume-id';
import { parseParameters, templateProblem, volumeContext, volumeLocation } from './parameters';

const pvc = { 'csi.storage.k8s.io/pvc/namespace': 'team-a', 'csi.storage.k8s.io/pvc/name': 'data', 'csi.storage.k8s.io/pv/name': 'pvc-123' };

function invalid(message: RegExp) {
  return expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) });
}

describe('StorageClass parameters', () => {
  it('has documented defaults', () => {
    expect(parseParameters({ bucket: 'models' })).toEqual({ bucket: 'models', prefixTemplate: '${pv.name}', basePrefix: '', reclaim: 'retain', cache: true });
  });

  it('defaults the template to namespace/name when csi-provisioner passes the PVC', () => {
    const parameters = parseParameters({ bucket: 'models', ...pvc });
    expect(parameters.prefixTemplate).toBe('${pvc.namespace}/${pvc.name}');
    expect(volumeLocation(parameters, 'pvc-123')).toEqual({ bucket: 'models', prefix: 'team-a/data/' });
  });

  it('reads every parameter', () => {
    const parameters = parseParameters({
      bucket: 'models',
      prefixTemplate: 'vols/${pv.name}/',
      basePrefix: 'k8s/',
      reclaim: 'delete',
      cache: 'false',
      mountOptions: 'uid=1000, file-mode=0640',
    });
    expect(parameters).toMatchObject({ basePrefix: 'k8s', reclaim: 'delete', cache: false, mountOptions: 'uid=1000,file-mode=0640' });
    const location = volumeLocation(parameters, 'pvc-1');
    expect(location).toEqual({ bucket: 'models', prefix: 'k8s/vols/pvc-1/' });
    expect(volumeContext(location, parameters)).toEqual({ bucket: 'models', prefix: 'k8s/vols/pvc-1/', cache: 'false', mountOptions: 'uid=1000,file-mode=0640' });
  });

  it('requires the bucket parameter', () => {
    expect(() => parseParameters({})).toThrow(invalid(/^StorageClass parameter bucket is required/));
    expect(() => parseParameters({ bucket: 'Not_A_Bucket' })).toThrow(invalid(/parameter bucket "Not_A_Bucket" is not a bucket name/));
  });

  it('names the known parameters when given an unknown one, but lets csi-provisioner keys through', () => {
    expect(() => parseParameters({ bucket: 'b-1', prefix: 'x' })).toThrow(
      invalid(/unknown StorageClass parameter "prefix"; granary knows bucket, prefixTemplate, basePrefix, reclaim, cache, mountOptions/),
    );
    expect(() => parseParameters({ bucket: 'b-1', 'csi.storage.k8s.io/fstype': 'ext4' })).not.toThrow();
  });

  it.each([
    ['reclaim', 'Delete', /reclaim must be one of retain, delete \(default retain\), not "Delete"/],
    ['cache', 'yes', /cache must be true or false \(default true\), not "yes"/],
    ['mountOptions', 'uid=1 gid=2', /mountOptions must be comma-separated options .* "uid=1 gid=2" is not/],
    ['mountOptions', 'uid=1,allow-other', /mountOptions has the unknown option "allow-other"; granary accepts uid=\.\.\., gid=\.\.\., file-mode=\.\.\., dir-mode=\.\.\., log-level=\.\.\./],
    ['mountOptions', 'file-mode=0999', /mountOptions option "file-mode=0999" is invalid: file-mode takes octal permission bits/],
    ['mountOptions', 'uid=0,file-mode=4755', /mountOptions option "file-mode=4755" is invalid: file-mode 4755 sets the setuid bit; granary never mounts setuid, setgid or sticky files: use 0755$/],
    ['mountOptions', 'file-mode=02755', /option "file-mode=02755" is invalid: file-mode 02755 sets the setgid bit; .*: use 0755$/],
    ['mountOptions', 'dir-mode=1777', /option "dir-mode=1777" is invalid: dir-mode 1777 sets the sticky bit; granary never mounts setuid, setgid or sticky directories: use 0777$/],
    ['basePrefix', '/abs', /basePrefix "\/abs" is invalid: the prefix must not start with \//],
    ['prefixTemplate', '${pvc.uid}', /prefixTemplate "\$\{pvc.uid\}" is invalid: it uses the unknown variable \$\{pvc.uid\}; the known ones are \$\{pvc.namespace\}, \$\{pvc.name\}, \$\{pv.name\}/],
    ['prefixTemplate', 'a/${pv.name', /has a "\$\{" without a closing "\}"/],
  ])('rejects %s=%s naming the accepted values', (key, value, message) => {
    expect(() => parseParameters({ bucket: 'b-1', [key]: value })).toThrow(invalid(message));
  });

  it('says a whole-bucket volume is a static PersistentVolume when a StorageClass asks for one', () => {
    expect(() => parseParameters({ bucket: 'b-1', allowWholeBucket: 'true' })).toThrow(
      invalid(/^allowWholeBucket is not a StorageClass parameter: every volume a StorageClass creates gets its own prefix; a whole-bucket volume is a static PersistentVolume with volumeAttributes allowWholeBucket: "true"$/),
    );
  });

  it('asks for --extra-create-metadata when the template needs the PVC and it is missing', () => {
    expect(() => parseParameters({ bucket: 'b-1', prefixTemplate: '${pvc.name}' })).toThrow(invalid(/--extra-create-metadata/));
  });

  it('refuses a template that renders to an unsafe or empty prefix', () => {
    expect(() => volumeLocation(parseParameters({ bucket: 'b-1', prefixTemplate: 'x//${pv.name}' }), 'v')).toThrow(invalid(/renders to "x\/\/v".*empty path segments/));
    expect(() => volumeLocation(parseParameters({ bucket: 'b-1', prefixTemplate: '${pv.name}' }), '..')).toThrow(invalid(/\. or \.\. segments/));
    expect(templateProblem('  ')).toBe('it is empty');
  });

  it('shortens a long prefix with a stable hash so the volume ID fits the spec limit', () => {
    const parameters = parseParameters({ bucket: 'a-bucket-with-a-long-name', basePrefix: 'k8s' });
    const name = 'n'.repeat(128);
    const location = volumeLocation(parameters, name);
    const id = formatVolumeId(location);
    expect(Buffer.byteLength(id)).toBe(MAX_VOLUME_ID_BYTES);
    expect(location.prefix).toMatch(/^k8s\/n+-[0-9a-f]{16}\/$/);
    expect(volumeLocation(parameters, name)).toEqual(location);
    expect(volumeLocation(parameters, `${name}x`)).not.toEqual(location);
    expect(() => volumeLocation(parseParameters({ bucket: 'b-1', basePrefix: 'p'.repeat(120) }), 'v'.repeat(10))).toThrow(invalid(/shorten basePrefix/));
  });
});
