// Bundles the front-end modules into cnnvis_widgets/widgets/static/ (ES modules).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { inlineCss, leaveOut, noThree, rawLoader, sharedLumino } from "./esbuild-plugins.mjs";

const rootUrl = new URL("..", import.meta.url);
// One entry per widget, js/<name>/index.js -> cnnvis_widgets/widgets/static/<name>.js, as the Python
// modules in cnnvis_widgets/widgets/ are named; export.js renders saved widget state in exported pages
// (the widget manager with every front end the notebooks use, see js/export/).
const WIDGETS = ["neuron_gallery", "am_explorer", "training_timeline", "inversion_view", "dissection_viewer", "export"];
const entries = Object.fromEntries(
  WIDGETS.map((name) => [`js/${name}/index.js`, `cnnvis_widgets/widgets/static/${name}.js`]),
);

// The export bundle: minified, CSS inlined, one Lumino; no ipywidgets 7 front ends, Font Awesome or three.js.
const EXPORT_OPTIONS = {
  minify: true,
  loader: { ".svg": "text" }, // JupyterLab's icons, imported as SVG text
  plugins: [
    inlineCss,
    rawLoader,
    noThree,
    sharedLumino(fileURLToPath(rootUrl)),
    leaveOut(/^@jupyter-widgets\/(base7|controls7)(\/|$)|^@fortawesome\//),
  ],
  define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
};

await Promise.all(
  Object.entries(entries).map(([input, output]) =>
    build({
      absWorkingDir: fileURLToPath(rootUrl),
      entryPoints: [input],
      outfile: output,
      bundle: true,
      format: "esm",
      target: "es2020",
      charset: "utf8",
      legalComments: "none",
      logLevel: "info",
      ...(input === "js/export/index.js" ? EXPORT_OPTIONS : {}),
    }),
  ),
);

// Every bundle ends up inside HTML <script> elements (export.js inline, the
// widgets as the `_esm` trait in saved widget state), so none may contain
// a closing script tag.
for (const output of Object.values(entries)) {
  const code = await readFile(new URL(output, rootUrl), "utf8");
  if (/<\/script/i.test(code)) throw new Error(`${output} contains "</script"`);
}
