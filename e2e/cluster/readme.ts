// What the README tells a user to run to install granary, read from the README itself so the cluster
// test installs exactly that: the my-values.yaml it writes, its helm install command, and the examples
// of manifests/examples/ with only their image names changed.
import { parse, parseAllDocuments } from 'yaml';

/** The README's install: the values file it writes and the words of its helm install command. */
export interface ReadmeInstall {
  /** The text of the my-values.yaml the README writes (its heredoc). */
  readonly values: string;
  /** The values file's name in the command (`-f NAME`). */
  readonly valuesFile: string;
  /** The helm install command's words as written, placeholders (`AKIA...`, `...`) included. */
  readonly helmInstall: readonly string[];
}

/** A StorageClass entry of the chart's values (the fields the test reads). */
export interface StorageClassValues {
  readonly name: string;
  readonly bucket: string;
  readonly reclaim?: 'retain' | 'delete';
  readonly reclaimPolicy?: 'Retain' | 'Delete';
  readonly [field: string]: unknown;
}

/**
 * Reads the install of README.md's "Installing in Kubernetes": the `cat > FILE <<'EOF' ... EOF`
 * heredoc and the `helm install` command after it (backslash continuations joined). Throws naming
 * what it did not find, so a rewrite of the README fails here rather than installing something else.
 */
export function readmeInstall(readme: string): ReadmeInstall {
  const section = /^## Installing in Kubernetes\n([\s\S]*?)^## /m.exec(readme)?.[1];
  if (!section) throw new Error('README.md has no "## Installing in Kubernetes" section');
  const heredoc = /^cat > (\S+) <<'EOF'\n([\s\S]*?)^EOF\n/m.exec(section);
  if (!heredoc) throw new Error('README.md\'s install section writes no values file (cat > FILE <<\'EOF\' ... EOF)');
  const command = /^(helm install (?:[^\n]*\\\n)*[^\n]*)$/m.exec(section.slice(heredoc.index + heredoc[0].length))?.[1];
  if (!command) throw new Error('README.md\'s install section has no helm install command after its values file');
  const words = command.replace(/\\\n/g, ' ').replace(/\s+#.*$/, '').trim().split(/\s+/);
  const valuesFile = heredoc[1]!;
  if (!words.some((word, index) => word === valuesFile && words[index - 1] === '-f')) {
    throw new Error(`README.md's helm install does not use the values file it writes (-f ${valuesFile}): ${words.join(' ')}`);
  }
  return { values: heredoc[2]!, valuesFile, helmInstall: words };
}

/** What the test puts in place of the README's file names and placeholders. */
export interface HelmInstallInputs {
  /** The chart's folder (the README says charts/granary, relative to the repository). */
  readonly chartDir: string;
  /** Where the README's values were written. */
  readonly valuesPath: string;
  /** Values files given after the README's (-f, in order): what differs on this cluster. */
  readonly extraValuesPaths: readonly string[];
  /** The value of each `--set NAME=PLACEHOLDER` of the command, by NAME; every one must be given. */
  readonly set: Readonly<Record<string, string>>;
}

/**
 * The arguments of the README's helm install (without `helm`), with its chart path, its values file
 * and its placeholders replaced and the extra values files right after the README's: nothing else
 * of the command changes.
 */
export function helmInstallArgs(install: ReadmeInstall, inputs: HelmInstallInputs): string[] {
  const args: string[] = [];
  const words = install.helmInstall.slice(1);
  for (let index = 0; index < words.length; index++) {
    const word = words[index]!;
    if (word === 'charts/granary') {
      args.push(inputs.chartDir);
    } else if (word === '-f' && words[index + 1] === install.valuesFile) {
      args.push('-f', inputs.valuesPath, ...inputs.extraValuesPaths.flatMap((file) => ['-f', file]));
      index++;
    } else if (word === '--set') {
      const name = words[index + 1]?.split('=')[0] ?? '';
      const value = inputs.set[name];
      if (value === undefined) throw new Error(`README.md's helm install sets ${name}, which the test has no value for`);
      args.push('--set', `${name}=${value}`);
      index++;
    } else {
      args.push(word);
    }
  }
  const missing = Object.keys(inputs.set).filter((name) => !words.some((word) => word.startsWith(`${name}=`)));
  if (missing.length > 0) throw new Error(`README.md's helm install does not set ${missing.join(', ')}`);
  return args;
}

/** The StorageClasses a values file defines (empty when it sets none). */
export function storageClassesOf(values: string): StorageClassValues[] {
  return ((parse(values) as { storageClasses?: StorageClassValues[] } | null)?.storageClasses) ?? [];
}

/**
 * An example manifest with its image names replaced (`image: NAME` lines, by `images`), and nothing
 * else changed. Every image it names must be replaced: one the map lacks would be pulled, which this
 * node cannot do, so it is an error naming the image.
 */
export function localExample(manifest: string, images: Readonly<Record<string, string>>): string {
  const replaced = manifest.replace(/^(\s*(?:- )?image:\s*)(\S+)\s*$/gm, (line: string, head: string, image: string) => {
    const local = images[image];
    if (local === undefined) throw new Error(`the example names image ${image}, which this node does not have (known: ${Object.keys(images).join(', ')})`);
    return `${head}${local}`;
  });
  // The replacement keeps the documents parseable and their count: a sanity check on the regex.
  const before = parseAllDocuments(manifest).length;
  const after = parseAllDocuments(replaced);
  if (after.length !== before || after.some((document) => document.errors.length > 0)) {
    throw new Error('replacing the example\'s image names broke its YAML');
  }
  return replaced;
}
