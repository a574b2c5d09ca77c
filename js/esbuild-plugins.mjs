// esbuild plugins for the export bundle (js/export/), which bundles
// @jupyter-widgets/html-manager, controls, bqplot and bqscales as one ES module.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import path from "node:path";

// Fonts are dropped (Font Awesome is not bundled); small images become data: URLs.
const CSS_ASSET_LOADERS = {
  ".woff": "empty", ".woff2": "empty", ".ttf": "empty", ".eot": "empty",
  ".svg": "dataurl", ".png": "dataurl", ".gif": "dataurl",
};

/** A CSS file imported from JS becomes a module that adds it to the page as a <style> element. */
export const inlineCss = {
  name: "inline-css",
  setup(b) {
    b.onLoad({ filter: /\.css$/, namespace: "file" }, async (args) => {
      const result = await build({
        entryPoints: [args.path], bundle: true, write: false, minify: true, logLevel: "silent",
        loader: CSS_ASSET_LOADERS,
      });
      const css = result.outputFiles[0].text.replace(/<\/(style|script)/gi, "<\\/$1");
      const name = path.relative(process.cwd(), args.path);
      return {
        loader: "js",
        contents: `const css = ${JSON.stringify(css)};
if (typeof document !== "undefined") {
  const style = document.createElement("style");
  style.dataset.source = ${JSON.stringify(name)};
  style.textContent = css;
  document.head.append(style);
}
export default css;`,
      };
    });
  },
};

/** webpack's `raw-loader!file` imports (bqplot's WebGL shaders): the file's text as the default export. */
export const rawLoader = {
  name: "raw-loader",
  setup(b) {
    b.onResolve({ filter: /^raw-loader!/ }, (args) => ({
      path: path.resolve(args.resolveDir, args.path.slice("raw-loader!".length)),
      namespace: "raw-text",
    }));
    b.onLoad({ filter: /.*/, namespace: "raw-text" }, async (args) => ({
      loader: "js",
      contents: `export default ${JSON.stringify(await readFile(args.path, "utf8"))};`,
    }));
  },
};

/** Empty modules for packages the page never needs: ipywidgets 7 front ends, Font Awesome's CSS. */
export const leaveOut = (pattern) => ({
  name: "leave-out",
  setup(b) {
    b.onResolve({ filter: pattern }, (args) => ({ path: args.path, namespace: "left-out" }));
    b.onLoad({ filter: /.*/, namespace: "left-out" }, () => ({ loader: "js", contents: "module.exports = {};" }));
  },
});

// three.js (half a megabyte) only serves bqplot's WebGL marks (ScatterGL), which no widget here uses:
// bqplot's Figure gets the one object it touches on import, anything else throws a readable error.
const THREE_STAND_IN = `const shaderChunk = {};
const missing = (name) => function () {
  throw new Error("bqplot's WebGL marks (" + name + ") are not bundled in exported pages");
};
module.exports = new Proxy({}, {
  get: (_, name) => (name === "ShaderChunk" ? shaderChunk : name === "__esModule" ? true : missing(String(name))),
});`;

export const noThree = {
  name: "no-three",
  setup(b) {
    b.onResolve({ filter: /^three$/ }, () => ({ path: "three", namespace: "three-stand-in" }));
    b.onLoad({ filter: /.*/, namespace: "three-stand-in" }, () => ({ loader: "js", contents: THREE_STAND_IN }));
  },
};

/** One copy of Lumino: bqplot's own (older) @lumino packages resolve to the ones html-manager uses. */
export const sharedLumino = (root) => ({
  name: "shared-lumino",
  setup(b) {
    b.onResolve({ filter: /^@lumino\// }, (args) => {
      if (!args.importer.includes(`${path.sep}node_modules${path.sep}bqplot${path.sep}`)) return undefined;
      return b.resolve(args.path, { resolveDir: root, kind: args.kind });
    });
  },
});
