// Runs in every test file's environment before it (jest's setupFiles, both projects).

// Tests build S3 clients in-process; under Node 20 each test file's fresh copy of the AWS SDK would print its
// NodeVersionSupportWarning (Node 22 from 2027) into the CI log. Its own opt-out silences that warning only, as
// src/cli/index.ts does for the granary process.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
