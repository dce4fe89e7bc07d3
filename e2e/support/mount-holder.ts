// The processes of a `granary mount`: the holder (the process started) and the serving process it runs.
import * as fs from 'node:fs';

/** The serving process of the mount holder `holderPid` (its one child), or undefined when it has none now. */
export function servingProcess(holderPid: number): number | undefined {
  try {
    const children = fs.readFileSync(`/proc/${holderPid}/task/${holderPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children[0];
  } catch {
    return undefined;
  }
}
