// The AWS_* variables that say where the object store is (endpoint, region), read as the SDK reads them but checked
// first: the SDK's own errors for a malformed value ("Invalid URL", "region is not a valid hostname component") name
// neither the variable nor the fix.

/** Region used when neither the environment nor the AWS profile names one (us-east-1, as the AWS CLI's default). */
export const DEFAULT_REGION = 'us-east-1';

/**
 * The endpoint the SDK would use from the environment (AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL), honouring
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS; throws, naming the variable and what to put there, when it is not an
 * http:// or https:// URL.
 */
export function endpointFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return undefined;
  const name = env.AWS_ENDPOINT_URL_S3 ? 'AWS_ENDPOINT_URL_S3' : 'AWS_ENDPOINT_URL';
  const endpoint = env[name] || undefined;
  if (endpoint !== undefined && !isHttpUrl(endpoint)) {
    // "127.0.0.1:9000" is no URL, and "minio:9000" is one whose scheme is "minio:": both lack http:// or https://.
    const example = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? 'http://127.0.0.1:9000' : `http://${endpoint}`;
    throw new Error(`${name}=${endpoint} is not an http:// or https:// URL: give the scheme too, e.g. ${name}=${example} (https:// for TLS)`);
  }
  return endpoint;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Throws, naming the variable and what to put there, when AWS_REGION is set but empty (the SDK would use "" as the region). */
export function checkRegionEnv(env: NodeJS.ProcessEnv): void {
  if (env.AWS_REGION === undefined || env.AWS_REGION.trim() !== '') return;
  throw new Error(
    "AWS_REGION is set but empty: set it to the bucket's region (e.g. AWS_REGION=us-east-1; an S3-compatible server " +
      `takes the region it is configured with), or unset it to use AWS_DEFAULT_REGION, the AWS profile, else ${DEFAULT_REGION}`,
  );
}
