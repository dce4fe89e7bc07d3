// The write path's public surface for the filesystem: per-mount state, write handles, truncate without a handle.
export { writePathSchema, type WritePathConfig, type WritePathConfigInput } from '../../config/write-path';
export { createWritePath, type WritePath, type WritePathDependencies } from './write-path';
export { createWriteHandle, WriteHandle, type WriteHandleOptions } from './write-handle';
export { truncateObject, type TruncateObjectOptions } from './truncate';
export { maxObjectSize, partSizeFor } from './part-plan';
