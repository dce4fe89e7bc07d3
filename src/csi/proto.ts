import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/csi';

/** Options shared by the loader and the type generator (`npm run proto`); they must agree. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true, // field names as the CSI spec writes them (volume_id, not volumeId)
  longs: Number, // capacities fit in 2^53
  enums: String,
  defaults: true, // absent fields read as '' / 0 / {}, so validation checks one shape
  oneofs: true,
};

/** Path of the CSI spec's proto file, from src/csi or dist/src/csi. */
function csiProtoPath(): string {
  for (const up of ['../..', '../../..']) {
    const candidate = path.join(__dirname, up, 'proto', 'csi', 'v1', 'csi.proto');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('proto/csi/v1/csi.proto not found next to the installed code');
}

let loaded: ProtoGrpcType | undefined;

/** The CSI v1 package (services and messages), loaded once from proto/csi/v1/csi.proto. */
export function csiPackage(): ProtoGrpcType['csi']['v1'] {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(csiProtoPath(), PROTO_LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return loaded.csi.v1;
}
