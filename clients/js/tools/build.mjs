// Builds the package and what the hub serves from it:
//   dist/                       the npm package (tsc: one .js and one .d.ts per module)
//   server/static/cimhub.js     the client as one ES module, for pages without a bundler
//   server/static/board.js      the live CIM board (board/*.ts); it imports the client from ./cimhub.js
//
//   node tools/build.mjs [--out <dir>]
//
// The outputs are committed, so `scripts/serve` needs no Node; with --out the same
// files are written under <dir> instead, which tests/test_js_package.py compares
// with the committed ones to catch a stale build.

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(pkg, "../..");
const at = process.argv.indexOf("--out");
const out = at >= 0 ? resolve(process.argv[at + 1]) : null;
const distDir = out ? join(out, "dist") : join(pkg, "dist");
const staticDir = out ? join(out, "static") : join(repo, "server/static");

rmSync(distDir, { recursive: true, force: true });
execFileSync(join(pkg, "node_modules/.bin/tsc"), ["-p", join(pkg, "tsconfig.json"), "--outDir", distDir], {
  stdio: "inherit",
});

// The board is bundled by esbuild, which does not type-check: check it (and src) here.
execFileSync(join(pkg, "node_modules/.bin/tsc"), ["-p", join(pkg, "tsconfig.board.json")], { stdio: "inherit" });

mkdirSync(staticDir, { recursive: true });
const banner = (what) => ({
  js: `// ${what}\n// Built from clients/js by \`bash scripts/gen-types\` (node clients/js/tools/build.mjs): do not edit.`,
});
// absWorkingDir: the path comments esbuild writes are then the same from any working directory.
const common = { absWorkingDir: pkg, bundle: true, format: "esm", target: "es2022", platform: "browser", legalComments: "none", logLevel: "warning" };
await build({
  ...common,
  entryPoints: [join(pkg, "src/index.ts")],
  outfile: join(staticDir, "cimhub.js"),
  banner: banner("cimhub browser client (the @cimhub/client package as one ES module)."),
});
// The board reaches the client only through src/index: that import stays an import of the
// cimhub.js beside it, so the page loads one copy of the client instead of a second bundled in.
const clientBesideIt = {
  name: "client-beside-it",
  setup(b) {
    b.onResolve({ filter: /\/src\/index\.js$/ }, (args) =>
      args.importer.startsWith(join(pkg, "board")) ? { path: "./cimhub.js", external: true } : undefined,
    );
  },
};
await build({
  ...common,
  entryPoints: [join(pkg, "board/main.ts")],
  outfile: join(staticDir, "board.js"),
  plugins: [clientBesideIt],
  banner: banner("The live CIM board served at / (clients/js/board/)."),
});
