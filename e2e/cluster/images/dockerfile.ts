/** One Dockerfile instruction: its keyword (upper case), its --flags and what follows them. */
export interface Instruction {
  readonly keyword: string;
  readonly flags: ReadonlyMap<string, string>;
  /** The arguments as written, after the flags. */
  readonly raw: string;
  /** The arguments of the JSON (exec) form, when they are written as a JSON array of strings. */
  readonly json?: readonly string[];
  /** The line the instruction starts on (1-based), for error messages. */
  readonly line: number;
}

/** A build stage: FROM image [AS name] and the instructions after it. */
export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

/**
 * Parses a Dockerfile into stages the way BuildKit reads one: comment lines are dropped (also inside
 * a continued instruction), a line ending in a backslash continues on the next, leading --flag=value
 * words are flags, and arguments that form a JSON array of strings are the exec form.
 */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.replace(/\r$/, '');
    if (/^\s*#/.test(line) || (pending === '' && line.trim() === '')) return;
    if (pending === '') startLine = index + 1;
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    instructions.push(parseInstruction(pending + line, startLine));
    pending = '';
  });
  if (pending !== '') instructions.push(parseInstruction(pending, startLine));

  const stages: Stage[] = [];
  let current: { from: string; name?: string; instructions: Instruction[] } | undefined;
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.raw);
      if (!match) throw new Error(`Dockerfile line ${instruction.line}: cannot read FROM ${instruction.raw}`);
      current = { from: match[1]!, name: match[2], instructions: [] };
      stages.push(current);
      continue;
    }
    if (!current) throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before the first FROM`);
    current.instructions.push(instruction);
  }
  return stages;
}

function parseInstruction(text: string, line: number): Instruction {
  const match = /^\s*(\S+)\s*(.*?)\s*$/.exec(text);
  if (!match) throw new Error(`Dockerfile line ${line}: cannot read '${text}'`);
  const keyword = match[1]!.toUpperCase();
  let rest = match[2]!;
  const flags = new Map<string, string>();
  for (let flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest); flag; flag = /^--([\w-]+)(?:=(\S*))?\s*/.exec(rest)) {
    flags.set(flag[1]!, flag[2] ?? '');
    rest = rest.slice(flag[0].length);
  }
  return { keyword, flags, raw: rest, json: jsonForm(rest), line };
}

function jsonForm(raw: string): string[] | undefined {
  if (!raw.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The words of a shell-form argument list (no quoting: the Dockerfile's COPY and ENV lines use none). */
export function words(raw: string): string[] {
  return raw.split(/\s+/).filter((word) => word !== '');
}
