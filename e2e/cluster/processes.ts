import * as fs from 'node:fs/promises';

/** The processes whose command line names dir (a daemon started with a path of the harness's). */
export async function processesNaming(dir: string): Promise<{ pid: number; command: string }[]> {
  const found: { pid: number; command: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const command = cmdline.split('\0').join(' ').trim();
    if (command.includes(dir)) found.push({ pid: Number(entry), command });
  }
  return found;
}
