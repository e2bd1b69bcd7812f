// `npm run build`: compiles everything, or, where the server's optional packages were left out
// (npm install --omit=optional), the client alone: imgpush then works, and `imgpush serve` says what to install.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { bundleCli } from './bundle.mjs';

const require = createRequire(import.meta.url);
const SERVER_PACKAGES = ['onnxruntime-node', 'sharp', 'fastify', '@fastify/multipart'];

function installed(name) {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

const missing = SERVER_PACKAGES.filter((name) => !installed(name));
const config = missing.length === 0 ? 'tsconfig.json' : 'tsconfig.client.json';
if (missing.length > 0) process.stderr.write(`imgpush: building the client alone (not installed: ${missing.join(', ')})\n`);
const tsc = fileURLToPath(new URL('../node_modules/.bin/tsc', import.meta.url));
const { status } = spawnSync(tsc, ['-p', config], { stdio: 'inherit' });
if (status !== 0) process.exit(status ?? 1);
await bundleCli();
