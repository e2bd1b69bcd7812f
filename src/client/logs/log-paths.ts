import { access, constants } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../../shared/errors.js';

/** A log that cannot be written would be found out only after files were sent: check its folder first. */
export async function assertLogsWritable({ out, failures, dryRun }: { out: string | undefined; failures: string; dryRun: boolean }): Promise<void> {
  if (dryRun) return;
  if (out !== undefined && resolve(out) === resolve(failures)) {
    throw new UsageError('IMGPUSH_USAGE', '--out and --failures must be different files');
  }
  for (const [flag, path] of [['--out', out], ['--failures', failures]] as const) {
    if (path === undefined) continue;
    try {
      await access(dirname(resolve(path)), constants.W_OK);
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be written to';
      throw new UsageError('IMGPUSH_BAD_LOG_PATH', `${flag} ${path}: its folder ${why}`);
    }
  }
}
