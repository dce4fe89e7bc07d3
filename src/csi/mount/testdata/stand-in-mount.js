#!/usr/bin/env node
// A stand-in for `granary mount SOURCE MOUNTPOINT [--read-only]` in supervisor unit tests: it mounts
// nothing, but speaks the same protocol (JSON logs on stderr, `ready\n` on GRANARY_READY_FD, exit on
// SIGTERM). STAND_IN_MODE picks the behaviour: ready (default), fail (log an error and exit 1),
// hang (never ready), stubborn (ready, then ignore SIGTERM).
'use strict';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain script node runs directly, no build step
const fs = require('node:fs');

const mode = process.env.GRANARY_STAND_IN_MODE || 'ready';
const log = (fields) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), pid: process.pid, ...fields })}\n`);

log({ msg: 'stand-in mount starting', argv: process.argv.slice(2), envKeys: Object.keys(process.env).sort() });

if (mode === 'fail') {
  log({ level: 'error', msg: 'AccessDenied: the access key is not valid for this bucket' });
  process.exit(1);
}
if (mode === 'stubborn') process.on('SIGTERM', () => log({ msg: 'ignoring SIGTERM' }));
else process.on('SIGTERM', () => { log({ msg: 'unmounting on SIGTERM' }); process.exit(0); });

if (mode !== 'hang') {
  const fd = Number(process.env.GRANARY_READY_FD);
  fs.writeSync(fd, 'ready\n');
  fs.closeSync(fd);
}
setInterval(() => undefined, 60_000);
