// The rules that keep the architecture as docs/architecture.md draws it:
// no import cycles anywhere, and imports that point one way between the
// halves (client, server, CLI) and between a run's stages and its wiring.
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** Stage folders of the client: each may use the client's top-level modules (errors, codes, results) and each other, never the wiring in run/. */
const STAGES = ['options', 'discovery', 'filter', 'schedule', 'attempt', 'bodies', 'transport', 'pacing', 'logs'];

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bench/corpus/', 'bench/.venv/'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.test.json' })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-self-import': 'error',
      'import-x/no-useless-path-segments': 'error',
      'import-x/no-restricted-paths': ['error', {
        zones: [
          { target: './src/client', from: ['./src/server', './src/cli', './src/models', './src/demo'], message: 'the client library stands alone: it never imports the server, the CLI or the models' },
          { target: './src/server', from: ['./src/client', './src/cli', './src/demo'], message: 'the server never imports the client or the CLI' },
          { target: './src/shared', from: ['./src/client', './src/server', './src/cli', './src/models', './src/demo'], message: 'shared/ is what both halves use: it imports neither' },
          { target: './src/models', from: ['./src/client', './src/server', './src/cli', './src/demo'], message: 'the models are built from shared/ alone' },
          ...STAGES.map((stage) => ({ target: `./src/client/${stage}`, from: './src/client/run', message: 'a stage never reaches back into the run that wires it' })),
          { target: './src/client', from: './src/client/index.ts', message: 'index.ts is the library entry for users; inside the client, import the module itself' },
        ],
      }],
    },
  },
);
