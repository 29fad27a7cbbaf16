// Lint rules for Pushgate: typescript-eslint's recommended and type-checked sets (type-aware through the
// project service, which reuses tsconfig.json), plus a few rules that catch the bugs a push server cannot
// afford: floating promises (a lost delivery), misused promises in callbacks, and == comparisons.
// Formatting is prettier's job (`npm run format`), so no stylistic rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.test-tmp/**', '.bench-build/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'test/*/fixtures/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      // Off by judgment, not to hide bugs: `async` without `await` is deliberate here. Store methods that SQLite
      // answers synchronously, fastify plugins and CLI commands are async so that a throw becomes a rejection the
      // caller's catch sees, as the Store contract and fastify's plugin API expect (typescript-eslint documents the
      // rule as stylistic for that reason). Floating and misused promises, the real bugs, stay errors.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // vitest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any` by vitest itself; inside
    // expect(...).toEqual({...}) that is not an unsafe value, so tests skip this one rule.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // The dashboard page's script is type-checked against the DOM library by its own tsconfig.web.json.
    files: ['src/dashboard/web/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: ['./tsconfig.web.json'], tsconfigRootDir: import.meta.dirname } },
  },
  {
    // Plain-JS build scripts have no types to check.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);
