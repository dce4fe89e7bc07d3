import { CsiError } from './errors';

/**
 * Object-store connection settings taken from CSI secrets. The key names are the ones the S3
 * CSI ecosystem already uses, so an existing Secret works unchanged.
 */
export interface StoreSettings {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Secret keys granary reads (anything else in the Secret is ignored). */
export const SECRET_KEYS = {
  accessKeyId: 'accessKeyID',
  secretAccessKey: 'secretAccessKey',
  sessionToken: 'sessionToken',
  endpoint: 'endpoint',
  region: 'region',
} as const;

/**
 * Reads store settings from a CSI secrets map. Empty secrets mean "use the plugin's own
 * environment" (AWS_* variables, IRSA, instance roles). Messages name keys, never values.
 */
export function settingsFromSecrets(secrets: Record<string, string> | undefined): StoreSettings {
  const get = (key: string) => {
    const value = secrets?.[key]?.trim();
    return value ? value : undefined;
  };
  const accessKeyId = get(SECRET_KEYS.accessKeyId);
  const secretAccessKey = get(SECRET_KEYS.secretAccessKey);
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new CsiError(
      'INVALID_ARGUMENT',
      `secrets must hold both ${SECRET_KEYS.accessKeyId} and ${SECRET_KEYS.secretAccessKey}, or neither (to use the plugin's own credentials); only ${accessKeyId ? SECRET_KEYS.accessKeyId : SECRET_KEYS.secretAccessKey} is set`,
    );
  }
  const endpoint = get(SECRET_KEYS.endpoint);
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
      throw new CsiError('INVALID_ARGUMENT', `secret key ${SECRET_KEYS.endpoint} must be an http:// or https:// URL without user info, e.g. https://s3.us-east-1.amazonaws.com`);
    }
  }
  const region = get(SECRET_KEYS.region);
  if (region !== undefined && !/^[a-z0-9-]{1,64}$/i.test(region)) {
    throw new CsiError('INVALID_ARGUMENT', `secret key ${SECRET_KEYS.region} must be a region name such as us-east-1`);
  }
  const sessionToken = get(SECRET_KEYS.sessionToken);
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } } : {}),
  };
}

/** The environment a mount process needs for these settings: the standard AWS variables, never argv. */
export function settingsToEnvironment(settings: StoreSettings): Record<string, string> {
  const env: Record<string, string> = {};
  if (settings.endpoint) env.AWS_ENDPOINT_URL = settings.endpoint;
  if (settings.region) env.AWS_REGION = settings.region;
  if (settings.credentials) {
    env.AWS_ACCESS_KEY_ID = settings.credentials.accessKeyId;
    env.AWS_SECRET_ACCESS_KEY = settings.credentials.secretAccessKey;
    if (settings.credentials.sessionToken) env.AWS_SESSION_TOKEN = settings.credentials.sessionToken;
  }
  return env;
}
