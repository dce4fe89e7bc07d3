import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ImageConfig } from './recipe';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
/** Uncompressed: the layers never leave the machine, and gzip would cost a core for a minute. */
const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** The sha256 digest ("sha256:HEX") and size of a file, streamed. */
export async function fileDigest(file: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function writeBlob(layout: string, content: string): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(content).digest('hex');
  await fs.writeFile(path.join(layout, 'blobs', 'sha256', hex), content);
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256) of one layer and a config, the
 * image named `name` for containerd (io.containerd.image.name), so `ctr images import` of the
 * layout's tar stores it under that name. The layer tar is moved into the layout, not copied.
 */
export async function writeOciLayout(layout: string, layerTar: string, config: ImageConfig, name: string): Promise<void> {
  await fs.rm(layout, { recursive: true, force: true });
  await fs.mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const layer = await fileDigest(layerTar);
  await fs.rename(layerTar, path.join(layout, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)));
  const imageConfig = await writeBlob(layout, JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {
      ...(config.user ? { User: config.user } : {}),
      Env: Object.entries(config.env).map(([key, value]) => `${key}=${value}`),
      ...(config.entrypoint.length > 0 ? { Entrypoint: config.entrypoint } : {}),
      ...(config.cmd.length > 0 ? { Cmd: config.cmd } : {}),
      WorkingDir: config.workdir,
    },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  }));
  const manifest = await writeBlob(layout, JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: CONFIG, ...imageConfig },
    layers: [{ mediaType: LAYER, ...layer }],
  }));
  await fs.writeFile(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: MANIFEST,
      ...manifest,
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').at(-1) },
    }],
  }));
  await fs.writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}
