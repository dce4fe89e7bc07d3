import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as RegistrationProto } from './generated/api';
import type { ProtoGrpcType } from './generated/csi';

/** Options shared by the loader and the type generator (`npm run proto`); they must agree. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true, // field names as the CSI spec writes them (volume_id, not volumeId)
  longs: Number, // capacities fit in 2^53
  enums: String,
  defaults: true, // absent fields read as '' / 0 / {}, so validation checks one shape
  oneofs: true,
};

/** Path of a file under proto/ (e.g. csi/v1/csi.proto), from src/csi or dist/src/csi. */
function protoPath(relative: string): string {
  for (const up of ['../..', '../../..']) {
    const candidate = path.join(__dirname, up, 'proto', relative);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`proto/${relative} not found next to the installed code`);
}

let loaded: ProtoGrpcType | undefined;

/** The CSI v1 package (services and messages), loaded once from proto/csi/v1/csi.proto. */
export function csiPackage(): ProtoGrpcType['csi']['v1'] {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(protoPath('csi/v1/csi.proto'), PROTO_LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return loaded.csi.v1;
}

let registrationLoaded: RegistrationProto | undefined;

/** The kubelet's plugin-registration package (v1), loaded once from proto/pluginregistration/v1/api.proto. */
export function registrationPackage(): RegistrationProto['pluginregistration'] {
  registrationLoaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(protoPath('pluginregistration/v1/api.proto'), PROTO_LOADER_OPTIONS)) as unknown as RegistrationProto;
  return registrationLoaded.pluginregistration;
}
