// Bundles every top-level js/*.js view into one self-contained, minified ESM file
// tlwidgets/static/<name>.js and copies js/*.css beside it.
//
// Views are discovered, not listed, so a new view only has to be dropped into js/.
// anywidget loads each bundle from a Blob URL, which rules out code splitting and
// relative imports at run time: everything a view imports (js/lib/...) is inlined.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const jsDir = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(jsDir, "..", "tlwidgets", "static");

const files = (await readdir(jsDir, { withFileTypes: true }))
  .filter((entry) => entry.isFile())
  .map((entry) => entry.name)
  .sort();
const views = files.filter((name) => name.endsWith(".js") && !name.endsWith(".test.js"));
const styles = files.filter((name) => name.endsWith(".css"));

if (views.length === 0) {
  console.error(`no views found: expected js/<view>.js files in ${jsDir}`);
  process.exit(1);
}

await mkdir(outDir, { recursive: true });
// Bundles of views that were renamed or removed must not linger in the wheel.
for (const name of await readdir(outDir)) {
  if ((name.endsWith(".js") && !views.includes(name)) || (name.endsWith(".css") && !styles.includes(name))) {
    await rm(path.join(outDir, name));
  }
}

await build({
  entryPoints: views.map((name) => path.join(jsDir, name)),
  outdir: outDir,
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  platform: "browser",
  legalComments: "none",
  logLevel: "warning",
});

for (const name of styles) {
  await copyFile(path.join(jsDir, name), path.join(outDir, name));
}

console.log(`built ${views.length} view(s) into ${path.relative(process.cwd(), outDir) || "."}: ${views.join(", ")}` +
  (styles.length ? `; copied ${styles.join(", ")}` : ""));
