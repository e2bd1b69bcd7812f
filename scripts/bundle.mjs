// The command line as one file (dist/cli/imgpush.js) and the chunks it loads when a run needs them: the
// compiled CLI and client with commander, undici's pool and the small packages they use, so a run reads a
// few files at start instead of about 90 modules (measured: a one-file run took 0.24 s of CPU without it,
// 0.18 s with it). The library's entry stays dist/client/index.js,
// typed, for programs that import imgpush. The server's side is not in it: `imgpush serve` imports
// dist/server/ (next to this file's folder) when asked, with its native packages.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const SERVER_PACKAGES = ['fastify', '@fastify/multipart', 'sharp', 'onnxruntime-node', 'prom-client'];

// commander requires node:child_process as it loads, for subcommands that are programs of their own, which
// imgpush has none of: loading it cost every start 3.5 ms. Commander gets a stand-in that loads it on a call.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^node:child_process$/ }, ({ importer }) => (importer.includes('/node_modules/commander/') ? { path: 'child_process', namespace: 'lazy' } : undefined));
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({ contents: "exports.spawn = (...args) => require('node:child_process').spawn(...args);", loader: 'js' }));
  },
};

export async function bundleCli() {
  // Chunk names carry a hash of their content: the last build's would stay beside this one's.
  await rm(fileURLToPath(new URL('../dist/cli/chunks', import.meta.url)), { recursive: true, force: true });
  await build({
    entryPoints: { imgpush: fileURLToPath(new URL('../dist/cli/main.js', import.meta.url)) },
    outdir: fileURLToPath(new URL('../dist/cli/', import.meta.url)),
    // What a run loads only when it needs it (undici for https://, fast-glob for globs, cli-progress for
    // a bar) goes to chunks of its own: Node then neither reads nor parses it at every start.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.18',
    external: SERVER_PACKAGES,
    plugins: [lazyChildProcess],
    // The CommonJS packages inside (commander, undici) call require() for Node's own modules.
    banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
    logLevel: 'warning',
  });
}
