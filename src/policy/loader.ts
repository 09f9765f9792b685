import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RoutingPolicy } from './types.js';

/** A policy module that cannot be used: the message names the file (and for type errors file:line:col). */
export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError';
}

type TypeScript = typeof import('typescript');

/**
 * Loads a routing policy module: `.js`/`.mjs` with import(), a `.ts`/`.mts` one type-checked with the TypeScript
 * compiler first (strict), then transpiled next to itself (so that its imports resolve as they would for the source)
 * and imported. Every load is a fresh module instance (a reload must see the file as it is now). The module's
 * default export (or the module itself) must have an onRequest function.
 */
export class PolicyLoader {
  /** Makes each import a new module URL: Node caches modules by URL for the life of the process. */
  private generation = 0;

  async load(file: string): Promise<RoutingPolicy> {
    const absolute = path.resolve(file);
    const ext = path.extname(absolute);
    let mod: unknown;
    if (ext === '.ts' || ext === '.mts') mod = await this.loadTypeScript(absolute);
    else if (ext === '.js' || ext === '.mjs') mod = await this.importFresh(absolute);
    else throw new PolicyLoadError(`${file}: a policy is a .ts, .mts, .js or .mjs module`);
    return policyOf(mod, file);
  }

  private async importFresh(file: string): Promise<unknown> {
    try {
      return await import(`${pathToFileURL(file).href}?v=${++this.generation}`);
    } catch (e) {
      throw new PolicyLoadError(`${file}: ${describe(e)}`);
    }
  }

  private async loadTypeScript(file: string): Promise<unknown> {
    const ts = await typescript(file);
    const source = await readFile(file, 'utf8').catch((e: unknown) => {
      throw new PolicyLoadError(`${file}: ${describe(e)}`);
    });
    const options = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
    };
    const program = ts.createProgram([file], options);
    const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length > 0) throw new PolicyLoadError(errors.slice(0, 10).map((d) => formatDiagnostic(ts, d)).join('\n'));
    const js = ts.transpileModule(source, { compilerOptions: { ...options, noEmit: false }, fileName: file }).outputText;
    const out = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++this.generation}.mjs`);
    await writeFile(out, js).catch((e: unknown) => {
      throw new PolicyLoadError(`${file}: cannot write the compiled policy: ${describe(e)}`);
    });
    try {
      return await this.importFresh(out);
    } finally {
      await unlink(out).catch(() => {});
    }
  }
}

/** TypeScript is needed only for .ts policies, and only then loaded. */
async function typescript(file: string): Promise<TypeScript> {
  try {
    return ((await import('typescript')) as { default: TypeScript }).default;
  } catch {
    throw new PolicyLoadError(`${file}: a .ts policy needs the 'typescript' package installed (or compile it to .js)`);
  }
}

function formatDiagnostic(ts: TypeScript, d: import('typescript').Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return `error TS${d.code}: ${message}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${d.file.fileName}:${line + 1}:${character + 1} - error TS${d.code}: ${message}`;
}

function policyOf(mod: unknown, file: string): RoutingPolicy {
  const m = mod as { default?: unknown };
  const candidate = (m.default ?? mod) as Partial<RoutingPolicy> | undefined;
  if (typeof candidate?.onRequest !== 'function') throw new PolicyLoadError(`${file}: the module exports no onRequest hook (export default definePolicy({ onRequest(ctx) { ... } }))`);
  for (const hook of ['onBranch', 'onResponse', 'onFailure'] as const) {
    if (candidate[hook] !== undefined && typeof candidate[hook] !== 'function') throw new PolicyLoadError(`${file}: ${hook} is not a function`);
  }
  return candidate as RoutingPolicy;
}

function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
