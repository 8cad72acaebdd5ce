/**
 * The architecture as a test (docs/architecture.md, "layers"): parses every import of `src/`
 * (static, type-only, re-exports and dynamic `import()` with a literal) and fails on
 *
 * - an import that looks up: each layer imports only itself and the layers below it
 *   (core < backends < engine < protocols < apps < public API < cli);
 * - an import past a layer's front door: protocols and apps reach the core only through
 *   `src/core/index.ts`, the engine only through `src/engine/index.ts`, another protocol only
 *   through its `index.ts`; `cli` reaches outside itself only through the public API modules
 *   (`src/index.ts`, `src/protocols/http1/index.ts`, `src/protocols/ws/index.ts`,
 *   `src/protocols/pubsub/index.ts`);
 * - a module cycle (printed as a path);
 * - a file in `src/` or `native/` over 600 lines of code (comments and blank lines not
 *   counted) whose opening comment does not say why, with a line starting `Size:`.
 *
 * The checks are pure functions over a graph, so the test also proves on small made-up graphs
 * that each of them fails when it should.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import ts from 'typescript';

// ---- Known violations that belong to work in progress elsewhere. -------------------------
// Each entry names the branch that removes it. The lead empties this list at merge; an entry
// that no longer matches a violation fails the test, so the list can only shrink. A known
// cycle lists the members of its component; a component with a module outside them is new.
const KNOWN_CYCLES: { members: string[]; owner: string }[] = [];
const KNOWN_LONG_FILES: { file: string; owner: string }[] = [];
// -------------------------------------------------------------------------------------------

const MAX_LOC = 600;

/** Layer of a module path relative to the repository (`src/...`), lowest first. */
const LAYERS = ['core', 'backends', 'engine', 'protocols', 'apps', 'public', 'cli'] as const;
type Layer = (typeof LAYERS)[number];

export function layerOf(file: string): Layer | undefined {
  if (file === 'src/index.ts') return 'public';
  const m = /^src\/([^/]+)\//.exec(file);
  return m && (LAYERS as readonly string[]).includes(m[1]!) ? (m[1] as Layer) : undefined;
}

const PUBLIC_MODULES = new Set(['src/index.ts', 'src/protocols/http1/index.ts', 'src/protocols/ws/index.ts', 'src/protocols/pubsub/index.ts']);
const FRONT_DOORS: Record<string, string> = { core: 'src/core/index.ts', engine: 'src/engine/index.ts' };

/** The protocol a path belongs to (`http1`, `ws`), if any. */
const protocolOf = (file: string): string | undefined => /^src\/protocols\/([^/]+)\//.exec(file)?.[1];

/** Why the import `from -> to` breaks the layering, or undefined when it is allowed. */
export function importViolation(from: string, to: string): string | undefined {
  const a = layerOf(from), b = layerOf(to);
  if (a === undefined || b === undefined) return undefined;
  if (a === 'cli') {
    if (b === 'cli' || PUBLIC_MODULES.has(to)) return undefined;
    return `cli imports ${to}: cli uses only the public API (${[...PUBLIC_MODULES].join(', ')})`;
  }
  if (LAYERS.indexOf(b) > LAYERS.indexOf(a)) return `${a} imports ${to}, a layer above it (${b})`;
  if ((a === 'protocols' || a === 'apps') && b !== a && FRONT_DOORS[b] !== undefined && to !== FRONT_DOORS[b]) {
    return `${a} imports ${to}: ${a} reach ${b} only through ${FRONT_DOORS[b]}`;
  }
  if (b === 'protocols' && (a === 'apps' || (a === 'protocols' && protocolOf(from) !== protocolOf(to)))) {
    const door = `src/protocols/${protocolOf(to)}/index.ts`;
    if (to !== door) return `${from} imports ${to}: another protocol is reached only through ${door}`;
  }
  return undefined;
}

/** A module cycle: the strongly connected component's members, and one path around it. */
export interface Cycle {
  members: string[];
  path: string[];
}

/** The module cycles of `graph`: one per strongly connected component (Tarjan). */
export function findCycles(graph: Map<string, string[]>): Cycle[] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const sccs: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) sccs.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return sccs.map((scc) => ({ members: scc, path: pathAround(graph, scc) }));
}

/** A shortest path from the component's first member back to itself. */
function pathAround(graph: Map<string, string[]>, scc: string[]): string[] {
  const inScc = new Set(scc);
  const start = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)!) path.splice(1, 0, x);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** Lines of code: lines with something besides comments and whitespace (TS and C). */
export function linesOfCode(text: string): number {
  let count = 0, inBlock = false, quote = '';
  for (const line of text.split('\n')) {
    let code = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!, n = line[i + 1];
      if (inBlock) {
        if (c === '*' && n === '/') { inBlock = false; i++; }
      } else if (quote) {
        code = true;
        if (c === '\\') i++;
        else if (c === quote) quote = '';
      } else if (c === '/' && n === '*') { inBlock = true; i++; }
      else if (c === '/' && n === '/') break;
      else if (c === '"' || c === "'" || c === '`') { quote = c; code = true; }
      else if (c !== ' ' && c !== '\t' && c !== '\r') code = true;
    }
    // Only template literals span lines; a stray quote in a line of C or TS ends with it.
    if (quote && quote !== '`') quote = '';
    if (code) count++;
  }
  return count;
}

/** The file's opening comment block (the comments before its first line of code). */
export function openingComment(text: string): string {
  const m = /^(?:\s*(?:\/\*[\s\S]*?\*\/|\/\/[^\n]*\n?))+/.exec(text);
  return m ? m[0] : '';
}

/** Why a file is too long, or undefined. */
export function sizeViolation(file: string, text: string): string | undefined {
  const loc = linesOfCode(text);
  if (loc <= MAX_LOC) return undefined;
  if (/^[\s/*]*Size:/m.test(openingComment(text))) return undefined;
  return `${file}: ${loc} lines of code (over ${MAX_LOC}) and no "Size:" reason in its opening comment`;
}

// ---- The repository. ----

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    assert.notEqual(up, dir, 'repository root (binding.gyp) not found');
    dir = up;
  }
  return dir;
}

function walk(dir: string, keep: (f: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, keep, out);
    else if (keep(e.name)) out.push(p);
  }
  return out;
}

const ROOT = repoRoot();
const rel = (p: string): string => relative(ROOT, p).split(sep).join('/');

/** src/ as a graph: module -> the src modules it imports (any kind of import). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const abs of walk(join(ROOT, 'src'), (f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const info = ts.preProcessFile(readFileSync(abs, 'utf8'), true, true);
    const deps = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue; // node: builtins and packages
      const target = resolve(dirname(abs), fileName).replace(/\.js$/, '.ts');
      assert.ok(existsSync(target), `${rel(abs)} imports ${fileName}, which does not resolve to a .ts file`);
      deps.add(rel(target));
    }
    graph.set(rel(abs), [...deps].sort());
  }
  return graph;
}

/** Whether every member of a found cycle is among a known cycle's members. */
const within = (found: string[], known: string[]): boolean =>
  found.every((f) => known.includes(f));

describe('structure: layers, cycles, file sizes', () => {
  const graph = importGraph();

  test('the checks catch what they should (made-up graphs)', () => {
    assert.match(importViolation('src/core/options.ts', 'src/backends/native.ts') ?? '', /core imports .* a layer above/);
    assert.match(importViolation('src/core/types.ts', 'src/engine/reactor.ts') ?? '', /layer above/);
    assert.match(importViolation('src/backends/native.ts', 'src/engine/index.ts') ?? '', /layer above/);
    assert.match(importViolation('src/engine/server.ts', 'src/protocols/ws/index.ts') ?? '', /layer above/);
    assert.match(importViolation('src/cli/doctor.ts', 'src/core/errors.ts') ?? '', /public API/);
    assert.match(importViolation('src/cli/serve.ts', 'src/apps/echo.ts') ?? '', /public API/);
    assert.match(importViolation('src/protocols/ws/client.ts', 'src/core/types.ts') ?? '', /only through src\/core\/index.ts/);
    assert.match(importViolation('src/protocols/ws/client.ts', 'src/engine/reactor.ts') ?? '', /only through src\/engine\/index.ts/);
    assert.match(importViolation('src/protocols/ws/server.ts', 'src/protocols/http1/parser.ts') ?? '', /only through src\/protocols\/http1\/index.ts/);
    assert.match(importViolation('src/apps/http-hello.ts', 'src/protocols/http1/server.ts') ?? '', /only through/);
    for (const [a, b] of [
      ['src/backends/native.ts', 'src/core/binding.ts'], ['src/engine/server.ts', 'src/backends/native.ts'],
      ['src/protocols/ws/server.ts', 'src/core/index.ts'], ['src/protocols/ws/server.ts', 'src/protocols/ws/sender.ts'],
      ['src/cli/serve.ts', 'src/index.ts'], ['src/cli/bench.ts', 'src/protocols/ws/index.ts'], ['src/index.ts', 'src/engine/index.ts'],
    ] as const) assert.equal(importViolation(a, b), undefined, `${a} -> ${b} is allowed`);

    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []], ['e', ['e']]]);
    assert.deepEqual(findCycles(g), [{ members: ['a', 'b', 'c'], path: ['a', 'b', 'c', 'a'] }, { members: ['e'], path: ['e', 'e'] }]);
    assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', []]])), []);

    assert.equal(linesOfCode('/* a\n b */\n// c\n\nx = 1; // d\n  "/* not a comment"\n'), 2);
    const long = (head: string): string => `${head}\n${'x++;\n'.repeat(MAX_LOC + 1)}`;
    assert.match(sizeViolation('f.ts', long('/** A file. */')) ?? '', /601 lines of code/);
    assert.equal(sizeViolation('f.ts', long('/**\n * A file.\n *\n * Size: one state machine; split, it would hide its invariants.\n */')), undefined);
    assert.equal(sizeViolation('f.ts', `/** A file. */\n${'x++;\n'.repeat(MAX_LOC)}`), undefined);
  });

  test('src/ has modules, and the graph sees every kind of import', () => {
    assert.ok(graph.size > 40, `${graph.size} modules`);
    assert.ok(graph.get('src/index.ts')!.includes('src/engine/index.ts'));
    assert.ok(graph.get('src/engine/worker.ts')!.includes('src/engine/workers.ts'));
  });

  test('each layer imports only itself and the layers below, through their front doors', () => {
    const bad: string[] = [];
    for (const [from, deps] of graph) for (const to of deps) {
      const why = importViolation(from, to);
      if (why) bad.push(`${from}: ${why}`);
    }
    assert.deepEqual(bad, [], `imports that break the layering:\n  ${bad.join('\n  ')}`);
  });

  test('no module cycles', () => {
    const cycles = findCycles(graph);
    const unknown = cycles.filter((c) => !KNOWN_CYCLES.some((k) => within(c.members, k.members)));
    assert.deepEqual(unknown.map((c) => `${c.path.join(' -> ')} (component: ${c.members.join(', ')})`), [], 'module cycles');
    const stale = KNOWN_CYCLES.filter((k) => !cycles.some((c) => within(c.members, k.members)));
    assert.deepEqual(stale.map((k) => k.members.join(', ')), [], 'allow-listed cycles that are gone: remove them from KNOWN_CYCLES');
  });

  test(`no file over ${MAX_LOC} lines of code without a written reason`, () => {
    const files = [
      ...walk(join(ROOT, 'src'), (f) => f.endsWith('.ts')),
      ...walk(join(ROOT, 'native'), (f) => f.endsWith('.c') || f.endsWith('.h')),
    ].map(rel).sort();
    const long = new Map<string, string>();
    for (const f of files) {
      const why = sizeViolation(f, readFileSync(join(ROOT, f), 'utf8'));
      if (why) long.set(f, why);
    }
    const unknown = [...long].filter(([f]) => !KNOWN_LONG_FILES.some((k) => k.file === f)).map(([, why]) => why);
    assert.deepEqual(unknown, [], 'files too long');
    const stale = KNOWN_LONG_FILES.filter((k) => !long.has(k.file)).map((k) => k.file);
    assert.deepEqual(stale, [], 'allow-listed long files that are fine now: remove them from KNOWN_LONG_FILES');
  });
});
