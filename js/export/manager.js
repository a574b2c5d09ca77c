// The widget manager of exported pages: @jupyter-widgets/html-manager, which
// brings @jupyter-widgets/base, controls and output itself and asks `loader`
// for every other module; those are bundled here, nothing is fetched.
// (lib/htmlmanager.js, not the package index: the index also loads the
// require.js/CDN embedder.)
import { HTMLManager } from "@jupyter-widgets/html-manager/lib/htmlmanager.js";
import * as bqplot from "bqplot/lib/index.js";
import * as bqscales from "bqscales/lib/index.js";
import * as anywidget from "./anywidget.js";

export const BUNDLED_MODULES = { anywidget, bqplot, bqscales };

/** The bundled module `name`; an error naming it when the page needs one that is not bundled. */
export function loadBundledModule(name, version) {
  const module = BUNDLED_MODULES[name];
  if (!module) throw new Error(`the widget module ${name}@${version} is not bundled in this page`);
  return module;
}

export function createManager() {
  return new HTMLManager({ loader: loadBundledModule });
}
