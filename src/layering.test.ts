// The layering of src/, checked on every unit run so it cannot rot: each top-level folder may import only the
// folders below it in LAYERS (and itself). The composition roots (cli/, roles/) sit on top; the filesystem, the
// cache and the CSI driver never import each other; blocks/, config/ and util/ are leaves they share.
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * What each folder (or top-level file) under src/ may import besides itself. Keep it a DAG: the test below fails
 * on a cycle, so a back edge cannot be added to make a wrong import pass.
 */
const LAYERS: Record<string, readonly string[]> = {
  cli: ['roles', 'csi', 'cache', 'config', 'blocks', 'objectstore', 'util', 'log', 'version'],
  roles: ['fs', 'cache', 'config', 'blocks', 'objectstore', 'util', 'log', 'metrics', 'system', 'version'],
  csi: ['config', 'objectstore', 'util', 'log', 'metrics', 'system', 'version'],
  fs: ['config', 'blocks', 'objectstore', 'util', 'log', 'system'],
  cache: ['config', 'blocks', 'objectstore', 'net', 'util', 'log', 'metrics', 'version'],
  config: ['blocks', 'objectstore'],
  blocks: ['objectstore', 'util', 'log'],
  objectstore: ['net', 'util', 'log'],
  net: ['util'],
  metrics: [],
  system: [],
  log: [],
  util: [],
  version: [],
  types: [],
};

const SRC = __dirname;
/** e2e/support: the real servers and mounts that integration tests under src/ may use. */
const TEST_SUPPORT = path.join(SRC, '..', 'e2e', 'support');

/** Every .ts file under `dir`, generated code included (it must obey the layering too). */
function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The layer a path under src/ belongs to: its top-level folder, or a top-level file's name without extension. */
function layerOf(file: string): string {
  const [first, ...rest] = path.relative(SRC, file).split(path.sep);
  return rest.length > 0 ? (first ?? '') : (first ?? '').replace(/\.ts$/, '');
}

/** The relative module specifiers a file imports: import/export from, import(), require(), import type. */
function relativeImports(source: string): string[] {
  const { importedFiles } = ts.preProcessFile(source, true, true);
  return importedFiles.map((file) => file.fileName).filter((name) => name.startsWith('.'));
}

/** Each import of a file under src/ that goes against LAYERS, as "file -> specifier (layer -> layer)". */
function violations(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const isTest = file.endsWith('.test.ts');
    for (const specifier of relativeImports(fs.readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), specifier);
      const where = `${path.relative(SRC, file)} -> ${specifier}`;
      if (path.relative(SRC, target).startsWith('..')) {
        // Only tests reach outside src/, and only for the shared test support.
        const inTestSupport = !path.relative(TEST_SUPPORT, target).startsWith('..');
        if (!(isTest && inTestSupport)) found.push(`${where} (outside src/)`);
        continue;
      }
      const to = layerOf(target);
      if (to === from) continue;
      const allowed = LAYERS[from];
      if (!allowed) found.push(`${where} (${from} is not in LAYERS: add it)`);
      else if (!allowed.includes(to)) found.push(`${where} (${from} may not import ${to})`);
    }
  }
  return found;
}

describe('layering of src/', () => {
  const files = sourceFiles(SRC);

  it('has no import against the allowed direction', () => {
    expect(violations(files)).toEqual([]);
  });

  it('lists every top-level folder and file of src/', () => {
    const layers = new Set(files.map(layerOf).filter((layer) => !layer.endsWith('.test')));
    expect([...layers].filter((layer) => !(layer in LAYERS))).toEqual([]);
  });

  it('allows no cycle: the table is a DAG', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (layer: string, trail: string[]): void => {
      if (state.get(layer) === 'done') return;
      if (state.get(layer) === 'visiting') {
        cycles.push([...trail.slice(trail.indexOf(layer)), layer].join(' -> '));
        return;
      }
      state.set(layer, 'visiting');
      for (const next of LAYERS[layer] ?? []) visit(next, [...trail, layer]);
      state.set(layer, 'done');
    };
    for (const layer of Object.keys(LAYERS)) visit(layer, []);
    expect(cycles).toEqual([]);
  });

  it('keeps the filesystem and the cache apart, with blocks/ and util/ below both', () => {
    expect(LAYERS.fs).not.toContain('cache');
    expect(LAYERS.cache).not.toContain('fs');
    for (const leaf of ['blocks', 'util', 'config']) {
      expect(LAYERS[leaf]).not.toContain('fs');
      expect(LAYERS[leaf]).not.toContain('cache');
    }
    expect(LAYERS.util).toEqual([]);
  });

  it('reads every kind of import statement, and sees real imports (the check is not vacuous)', () => {
    const source = [
      "import { a } from '../fs/a';",
      "import type { B } from './b';",
      "export { c } from '../cache/c';",
      "export * from './d';",
      "import './e';",
      "const f = require('../f');",
      "void import('../g');",
      "import pino from 'pino';",
      "// import { nope } from '../not-an-import';",
    ].join('\n');
    expect(relativeImports(source)).toEqual(['../fs/a', './b', '../cache/c', './d', './e', '../f', '../g']);
    const total = files.reduce((sum, file) => sum + relativeImports(fs.readFileSync(file, 'utf8')).length, 0);
    expect(total).toBeGreaterThan(500);
  });
});
