/**
 * `import()` of a module named at run time: sharp, or the server's side for
 * `imgpush serve`. A module of its own because the CLI's bundle, compiled
 * through node:vm for V8's code cache, cannot run `import()` itself without
 * an experimental flag: the bundle gets a stand-in that Node loads as a
 * file of its own (scripts/bundle.mjs).
 */
export function importModule(specifier: string): Promise<unknown> {
  return import(specifier);
}
