// ESLint: typescript-eslint's recommended rules over the library, the scripts and the tests, plus
// the two type-aware rules that matter most in a runtime built on promises: no promise left
// floating, none handed where a callback's result is ignored (its rejection would go unhandled).
// Formatting is prettier's (`npm run format`); the import layers are test/unit/layers.test.ts.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.wharf/**', 'clients/**', 'bench/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // The dashboard's pages run in the browser (served as they are, no build step).
  { files: ['dashboard/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
