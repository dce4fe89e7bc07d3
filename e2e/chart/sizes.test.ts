// Sizes in the chart: values.schema.json, the templates and the CLI read one grammar (src/config/size.ts);
// every size value reaches its flag as written and the CLI's own parser reads it as the same bytes; the
// cache pod's memory is cache.ram + cache.memoryOverhead in whatever forms they are written.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { BYTE_SIZE_PATTERN, parseByteSize } from '../../src/config/size';
import { CHART_DIR, containers, helmTemplate, parseObjects, type Container } from './chart';

// Real processes (node, helm) start slowly on a loaded machine: no test here may fail on jest's 5 s default.
jest.setTimeout(60_000);

/** Every value that holds a size, with the cache server flag it becomes (memoryOverhead only adds to the pod's memory). */
const SIZE_VALUES: Record<string, string | undefined> = {
  'cache.ram': '--ram-bytes',
  'cache.memoryOverhead': undefined,
  'cache.disk.size': '--disk-bytes',
  'cache.disk.freeFloor': '--disk-free-floor',
};

interface SchemaNode {
  $ref?: string;
  $defs?: Record<string, SchemaNode & { pattern?: string }>;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

const schema = JSON.parse(fs.readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as SchemaNode;

/** The dotted paths of the schema's properties that refer to `ref`. */
function pathsReferring(node: SchemaNode, ref: string, prefix = ''): string[] {
  const here = node.$ref === ref ? [prefix] : [];
  const children = Object.entries(node.properties ?? {}).flatMap(([name, child]) => pathsReferring(child, ref, prefix ? `${prefix}.${name}` : name));
  return [...here, ...children, ...(node.items ? pathsReferring(node.items, ref, `${prefix}[]`) : [])];
}

/** The cache server's granary container of a render; throws with helm's message when the render failed. */
function cacheServer(files: string[], set: string[]): { container: Container; memory: { requests: string; limits: string } } {
  const result = helmTemplate(files, set);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  const found = containers(parseObjects(result.stdout)).find(({ owner, container }) => owner.metadata.name.endsWith('-cache') && container.name === 'granary');
  if (!found) throw new Error('the render has no cache server container');
  const resources = (found.container as unknown as { resources: { requests: { memory: unknown }; limits: { memory: unknown } } }).resources;
  return { container: found.container, memory: { requests: String(resources.requests.memory), limits: String(resources.limits.memory) } };
}

function flag(container: Container, name: string): string | undefined {
  return container.args?.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** The message `parseByteSize(text)` throws. */
function refusal(text: string): string {
  try {
    parseByteSize(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`parseByteSize accepted ${JSON.stringify(text)}`);
}

describe('sizes in the chart', () => {
  it('share one grammar: values.schema.json $defs.size, the granary.bytes template helper and src/config/size.ts', () => {
    expect(schema.$defs?.size?.pattern).toBe(BYTE_SIZE_PATTERN);
    const helpers = fs.readFileSync(path.join(CHART_DIR, 'templates', '_helpers.tpl'), 'utf8');
    expect(helpers).toContain(`$pattern := \`${BYTE_SIZE_PATTERN}\``);
  });

  it('check every size value of values.yaml, and only those, against $defs.size; the defaults parse', () => {
    expect(pathsReferring(schema, '#/$defs/size').sort()).toEqual(Object.keys(SIZE_VALUES).sort());
    const values = parse(fs.readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    for (const dotted of Object.keys(SIZE_VALUES)) {
      const value = dotted.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], values);
      expect({ dotted, bytes: parseByteSize(String(value)) }).toEqual({ dotted, bytes: expect.any(Number) });
    }
  });

  it.each([
    ['8Gi', '1Gi'],
    ['8GiB', '512MiB'],
    ['8G', '1G'],
    ['1.5Ti', '0.5Gi'],
    ['8589934592', '1073741824'],
    ['500M', '64k'],
    ['1.5 GiB', '100Mi'],
    ['2pi', '4.35M'],
  ])('renders %j (ram, disk size) and %j (overhead, free floor) into flags the CLI reads as the same bytes, memory their sum', (big, small) => {
    const values: Record<string, string> = { 'cache.ram': big, 'cache.memoryOverhead': small, 'cache.disk.size': big, 'cache.disk.freeFloor': small };
    const { container, memory } = cacheServer([], Object.entries(values).map(([key, value]) => `${key}=${value}`));
    for (const [key, name] of Object.entries(SIZE_VALUES)) {
      if (!name) continue;
      expect({ key, arg: flag(container, name) }).toEqual({ key, arg: values[key] });
      expect(parseByteSize(flag(container, name)!)).toBe(parseByteSize(values[key]!));
    }
    const sum = parseByteSize(big) + parseByteSize(small);
    expect(parseByteSize(memory.requests)).toBe(sum);
    expect(parseByteSize(memory.limits)).toBe(sum);
  });

  it('passes a size written as a YAML number as its digits, not as 8.589934592e+09', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'granary-sizes-'));
    try {
      const file = path.join(dir, 'values.yaml');
      fs.writeFileSync(file, 'cache:\n  ram: 8589934592\n  memoryOverhead: 1073741824\n  disk:\n    size: 500000000000\n');
      const { container, memory } = cacheServer([file], []);
      expect(flag(container, '--ram-bytes')).toBe('8589934592');
      expect(flag(container, '--disk-bytes')).toBe('500000000000');
      expect(memory).toEqual({ requests: '9216Mi', limits: '9216Mi' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(Object.keys(SIZE_VALUES))('refuses %s: 8 gigs in the schema, naming the value', (key) => {
    const result = helmTemplate([], [`${key}=8 gigs`]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`at '/${key.replace(/\./g, '/')}': '8 gigs' does not match pattern`);
  });

  it.each([
    ['cache.ram', '0.1Ki'],
    ['cache.memoryOverhead', '1.5'],
    ['cache.disk.size', '8Pi'],
    ['cache.disk.freeFloor', '0.001Ei'],
  ])('refuses %s: %s (a pattern cannot tell) at render, in the words of the CLI', (key, value) => {
    const result = helmTemplate([], [`${key}=${value}`]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(refusal(value));
  });
});
