// The command line as one CommonJS file, dist/cli/imgpush.cjs: the compiled CLI and client with commander,
// undici's pool and the small packages they use, so a run reads one file at start instead of about 90
// modules. CommonJS because Node 20 starts its ES module loader for an ES module (an empty one took 8 ms
// longer than an empty CommonJS file), and because V8 can then take the file's compiled code from a cache
// (see bin/imgpush): alternating 21 one-file runs of each, 67 ms beyond `node -e 0` before, 46 after. What a run needs only sometimes
// (undici for https://, fast-glob for globs, cli-progress for a bar) is evaluated when first used.
// The library's entry stays dist/client/index.js, typed, for programs that import imgpush. The server's
// side is not in it: `imgpush serve` imports dist/server/ (next to this file's folder) when asked.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_PACKAGES = ['fastify', '@fastify/multipart', 'sharp', 'onnxruntime-node', 'prom-client'];
const CLI = fileURLToPath(new URL('../dist/cli/imgpush.cjs', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/imgpush', import.meta.url));

// commander requires node:child_process as it loads, for subcommands that are programs of their own, which
// imgpush has none of: loading it cost every start 3.5 ms. Commander gets a stand-in that loads it on a call.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(builder) {
    builder.onResolve({ filter: /^node:child_process$/ }, ({ importer }) => (importer.includes('/node_modules/commander/') ? { path: 'child_process', namespace: 'lazy' } : undefined));
    builder.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({ contents: "exports.spawn = (...args) => require('node:child_process').spawn(...args);", loader: 'js' }));
  },
};

// import() in the bundle, compiled through node:vm, would need an experimental flag (see src/shared/import-module.ts):
// the module that does it is a file of its own beside the bundle, which Node loads as any other.
const IMPORT_MODULE = "exports.importModule = (specifier) => import(specifier);\n";
const importFromFile = {
  name: 'import-from-file',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]dist[\\/]shared[\\/]import-module\.js$/ }, () => ({ contents: "export { importModule } from './import-module.cjs';", loader: 'js' }));
    builder.onResolve({ filter: /^\.\/import-module\.cjs$/ }, ({ path }) => ({ path, external: true }));
  },
};

export async function bundleCli() {
  // A cache is taken for any file of its length (V8 checks no more): the last build's must never meet this one.
  await rm(`${CLI}.cache`, { force: true });
  const { metafile } = await build({
    entryPoints: [fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))],
    outfile: CLI,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20.18',
    external: SERVER_PACKAGES,
    plugins: [lazyChildProcess, importFromFile],
    // The modules' own URL, for what they find next to them (package.json, dist/server/).
    define: { 'import.meta.url': 'bundleUrl' },
    banner: { js: "const bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
    metafile: true,
  });
  // An import() left in the bundle fails when it runs (see importFromFile): Node's own modules are taken with
  // process.getBuiltinModule(), modules named at run time with src/shared/import-module.ts.
  const left = Object.values(metafile.outputs).flatMap(({ imports }) => imports).filter(({ kind }) => kind === 'dynamic-import');
  if (left.length > 0) throw new Error(`the CLI's bundle would run import() of ${left.map(({ path }) => path).join(', ')}`);
  await writeFile(fileURLToPath(new URL('../dist/cli/import-module.cjs', import.meta.url)), IMPORT_MODULE);
  // Node 22.1+ keeps a cache of its own (bin/imgpush turns it on); Node 20 gets this one.
  if (module.enableCompileCache === undefined) {
    // Without it the CLI works the same, compiled at each start: a build never fails for it.
    await makeCodeCache().catch((error) => process.stderr.write(`imgpush: no code cache for the CLI (${error.message}): it starts about 20 ms slower\n`));
  }
}

/**
 * V8's code cache of the CLI, made by a one-file run against a local server
 * so that it holds what such a run compiles, not only the file's top level.
 * bin/imgpush uses it when the Node that runs it is the one that made it.
 */
async function makeCodeCache() {
  const server = createServer((request, response) => request.resume().on('end', () => response.end('{}')));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const folder = await mkdtemp(join(tmpdir(), 'imgpush-code-cache-'));
  try {
    await writeFile(join(folder, 'image.jpg'), Buffer.alloc(1024));
    const run = spawn(process.execPath, [BIN, 'image.jpg', '--url', `http://127.0.0.1:${server.address().port}/`, '--quiet'], {
      cwd: folder, stdio: 'inherit', env: { ...process.env, IMGPUSH_MAKE_CODE_CACHE: '1' },
    });
    const [code] = await once(run, 'exit');
    if (code !== 0) throw new Error(`the run that makes it exited ${code}`);
  } finally {
    server.close();
    await rm(folder, { recursive: true, force: true });
  }
}
