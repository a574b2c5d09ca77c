// Bundles the front-end modules into cnnvis_widgets/static/ (ES modules).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const rootUrl = new URL("..", import.meta.url);
const entries = {
  "js/neuron_gallery.js": "cnnvis_widgets/static/neuron_gallery.js",
  "js/embed.js": "cnnvis_widgets/static/embed.js",
  "js/am_explorer.js": "cnnvis_widgets/static/am_explorer.js",
  "js/training_timeline.js": "cnnvis_widgets/static/training_timeline.js",
  "js/inversion_view.js": "cnnvis_widgets/static/inversion_view.js",
  "js/dissection_viewer.js": "cnnvis_widgets/static/dissection_viewer.js",
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
    }),
  ),
);

// Both bundles end up inside HTML <script> elements (embed.js inline, the
// gallery as the `_esm` trait in saved widget state), so neither may contain
// a closing script tag.
for (const output of Object.values(entries)) {
  const code = await readFile(new URL(output, rootUrl), "utf8");
  if (/<\/script/i.test(code)) throw new Error(`${output} contains "</script"`);
}
