// The one-node cluster test (npm run test:cluster): apart from npm test's projects, since it boots a
// real node (root, a few GiB of disk, the cluster tools of e2e/cluster/install.sh). One file at a
// time, in band: the node is one per machine.
/** @type {import('jest').Config} */
module.exports = {
  rootDir: '../..',
  displayName: 'cluster',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/e2e/cluster/**/*.cluster.ts'],
};
