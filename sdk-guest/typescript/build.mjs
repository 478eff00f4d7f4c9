#!/usr/bin/env node
// The one build command: a plugin module (TypeScript or JavaScript) into a
// WebAssembly component implementing switchyard:plugin@0.3.0.
//
//     node sdk-guest/typescript/build.mjs plugins/route-by-field-ts/src/route_by_field.ts -o out.wasm
//
// 1. Compiles the SDK (`tsc`, into dist/) and type-checks and compiles the
//    plugin with the pinned `typescript`, into a staging folder.
// 2. Points the plugin's `@switchyard/plugin-sdk` imports at the staged SDK
//    (componentize-js resolves relative imports only) and writes an entry
//    module that installs the contract's `log` import and re-exports the
//    plugin's `handler`.
// 3. Runs the pinned componentize-js with `-d http -d fetch-event`: its
//    default build imports wasi:http, which the gateway refuses (plugins may
//    import only WASI and switchyard:plugin/log). No `--aot`: it downloads
//    a tool at build time. Everything here works offline after `npm ci`.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SDK_DIR = dirname(fileURLToPath(import.meta.url));
const DEFAULT_WIT = resolve(SDK_DIR, "..", "..", "schemas", "wit");
const bin = (name) => join(SDK_DIR, "node_modules", ".bin", name);

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    output: { type: "string", short: "o" },
    wit: { type: "string", default: DEFAULT_WIT },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help || positionals.length !== 1 || !values.output) {
  console.error("usage: node build.mjs PLUGIN.ts|PLUGIN.js -o OUT.wasm [--wit DIR]");
  process.exit(values.help ? 0 : 2);
}
const source = resolve(positionals[0]);
const output = resolve(values.output);
const wit = resolve(values.wit);
if (!/\.(ts|mts|js|mjs)$/.test(source) || !existsSync(source)) fail(`${positionals[0]}: not a .ts or .js file`);
if (!existsSync(join(wit, "plugin.wit"))) fail(`${wit}: no plugin.wit there; pass --wit schemas/wit`);
if (!existsSync(bin("componentize-js"))) fail(`the SDK's tools are not installed: (cd ${SDK_DIR} && npm ci)`);

function run(cmd, args, what) {
  const done = spawnSync(cmd, args, { stdio: "inherit" });
  if (done.status !== 0) fail(`${what} failed (exit ${done.status ?? done.signal}): ${cmd} ${args.join(" ")}`);
}

// The SDK itself, when its sources are newer than its build.
const sdkIndex = join(SDK_DIR, "dist", "index.js");
const newest = (dir) =>
  Math.max(...readdirSync(dir, { recursive: true }).map((f) => statSync(join(dir, f)).mtimeMs));
if (!existsSync(sdkIndex) || newest(join(SDK_DIR, "src")) > statSync(sdkIndex).mtimeMs) {
  run("node", [join(SDK_DIR, "scripts", "build-sdk.mjs")], "building the SDK");
}

const stage = mkdtempSync(join(tmpdir(), "switchyard-ts-build-"));
try {
  // The plugin: type-checked against the SDK's declarations, emitted as
  // ES modules (its local imports come along).
  const ts = (await import(join(SDK_DIR, "node_modules", "typescript", "lib", "typescript.js"))).default;
  const options = {
    target: ts.ScriptTarget.ES2022,
    // ES modules whatever the plugin's folder says: under `NodeNext` a file
    // without a `package.json` of `"type": "module"` above it is emitted as
    // CommonJS, which componentize-js can't import `handler` from.
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts"],
    types: [],
    strict: true,
    allowJs: true,
    skipLibCheck: true,
    rootDir: dirname(source),
    outDir: join(stage, "plugin"),
    // Found without an `npm ci` in the plugin's folder too.
    paths: { "@switchyard/plugin-sdk": [join(SDK_DIR, "dist", "index.d.ts")] },
  };
  const program = ts.createProgram([source], options);
  const emitted = program.emit();
  const diagnostics = ts.getPreEmitDiagnostics(program).concat(emitted.diagnostics);
  if (diagnostics.length > 0) {
    const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => "\n" };
    console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
    fail(`${positionals[0]} does not compile`);
  }
  // The SDK's modules beside it, and the plugin's imports pointed there.
  cpSync(join(SDK_DIR, "dist"), join(stage, "sdk"), {
    recursive: true,
    filter: (f) => !f.includes(`${join(SDK_DIR, "dist", "test")}`) && !f.endsWith(".d.ts"),
  });
  for (const f of readdirSync(join(stage, "plugin"), { recursive: true })) {
    const file = join(stage, "plugin", f);
    if (!file.endsWith(".js")) continue;
    const sdk = relative(dirname(file), join(stage, "sdk", "index.js"));
    const text = readFileSync(file, "utf8").replace(
      /(["'])@switchyard\/plugin-sdk\1/g,
      JSON.stringify(sdk.startsWith(".") ? sdk : `./${sdk}`),
    );
    writeFileSync(file, text);
  }
  const module = `./plugin/${basename(source).replace(/\.(ts|mts|js|mjs)$/, ".js")}`;
  writeFileSync(
    join(stage, "entry.js"),
    [
      `import { log } from "switchyard:plugin/log@0.3.0";`,
      `import { setSink } from "./sdk/log.js";`,
      `setSink(log);`,
      `export { handler } from ${JSON.stringify(module)};`,
      "",
    ].join("\n"),
  );
  run(
    bin("componentize-js"),
    [join(stage, "entry.js"), "--wit", wit, "--world-name", "plugin", "-d", "http", "-d", "fetch-event", "-o", output],
    "componentize-js",
  );
  console.log(`${relative(process.cwd(), output)}: ${(statSync(output).size / 1e6).toFixed(1)} MB`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
