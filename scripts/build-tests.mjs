// `npm test` and the benches: compiles once. The source goes to dist/ (as `npm run build` does, and not
// again when it is up to date; the command line bundled, see bundle.mjs), the tests and benches to build/, made anew so a deleted test cannot keep
// running; build/src links to dist/ so their imports of ../src/ find the very code users run.
import { spawnSync } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleCli } from './bundle.mjs';

const root = new URL('../', import.meta.url);
rmSync(new URL('build/', root), { recursive: true, force: true });
const tsc = fileURLToPath(new URL('node_modules/.bin/tsc', root));
const { status } = spawnSync(tsc, ['-b', fileURLToPath(new URL('tsconfig.test.json', root))], { stdio: 'inherit' });
if (status !== 0) process.exit(status ?? 1);
await bundleCli();
symlinkSync('../dist', new URL('build/src', root), 'dir');
