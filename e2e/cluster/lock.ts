import * as fs from 'node:fs';

/** Whether a process of that id is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live process (this one included) that holds the lock file, if any. */
export function lockHolder(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * Takes the node's lock for this process (a file holding its pid; a dead holder's lock is taken
 * over), so a second run or a cleanup cannot pull a running node from under its owner.
 */
export function acquireLock(file: string): void {
  const holder = lockHolder(file);
  if (holder !== undefined) {
    throw new Error(`the test node is in use by process ${holder}${holder === process.pid ? ' (this one)' : ''} (lock ${file}): wait for it, or stop it`);
  }
  fs.writeFileSync(file, `${process.pid}\n`);
}

/** Gives the lock up (removes its file) when this process holds it. */
export function releaseLock(file: string): void {
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file);
}
