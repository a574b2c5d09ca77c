// The `anywidget` front end (models "AnyModel", views "AnyView") for pages
// without a kernel. anywidget's npm package ends in an AMD `define(...)` call
// made for JupyterLab's module loader, so it is not an ES module esbuild can
// bundle as is; this is the small part of it that saved state needs: import
// the `_esm` trait, inject `_css`, call the module's initialize() and render().
import { DOMWidgetModel, DOMWidgetView } from "@jupyter-widgets/base";

export const ANYWIDGET_VERSION = "0.11.0";

/** Import ES module source text (or an http/blob/data URL) in the browser. */
export async function importSource(esm) {
  const text = String(esm ?? "").trim();
  if (/^(https?:|blob:|data:)/.test(text)) return import(/* @vite-ignore */ text);
  const url = URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
  try {
    return await import(/* @vite-ignore */ url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** The widget definition ({initialize?, render?}) an anywidget module exports. */
export async function widgetDefinition(mod) {
  if (typeof mod?.render === "function") return { render: mod.render }; // anywidget < 0.9 style
  let definition = mod?.default;
  if (typeof definition === "function") definition = await definition();
  if (!definition || typeof definition !== "object") throw new Error("the widget module has no default export");
  return definition;
}

/** Put `css` in a <style> of `doc`'s head, one per widget id (replaced, not added, on a second call). */
export function injectCss(css, id, doc = document) {
  if (typeof css !== "string" || !css.trim()) return;
  const key = String(id || "anywidget");
  let style = [...doc.head.querySelectorAll("style[data-anywidget-id]")].find((s) => s.dataset.anywidgetId === key);
  if (!style) {
    style = Object.assign(doc.createElement("style"), { type: "text/css" });
    style.dataset.anywidgetId = key;
    doc.head.append(style);
  }
  style.textContent = css;
}

/**
 * The model API anywidget hands to initialize() and render(), over a
 * Backbone widget model. Listeners are added with `context`, so the view
 * that owns them can remove them all at once.
 */
export function modelAdapter(model, context) {
  return {
    get: (name) => model.get(name),
    set: (name, value) => model.set(name, value),
    save_changes: () => model.save_changes(),
    send: (content, callbacks, buffers) => model.send(content, callbacks, buffers),
    on: (event, callback) => model.on(event, callback, context),
    off: (event, callback) => model.off(event ?? null, callback ?? null, context),
    widget_manager: model.widget_manager,
  };
}

/** A short note shown where a widget could not be drawn. */
export function errorNote(text, doc = document) {
  return Object.assign(doc.createElement("div"), { className: "cnnvis-embed-note", textContent: text });
}

const INITIALIZE = { name: "anywidget initialize" }; // the listener context of initialize()

export class AnyModel extends DOMWidgetModel {
  static model_name = "AnyModel";
  static model_module = "anywidget";
  static model_module_version = ANYWIDGET_VERSION;
  static view_name = "AnyView";
  static view_module = "anywidget";
  static view_module_version = ANYWIDGET_VERSION;

  defaults() {
    return {
      ...super.defaults(),
      _model_name: "AnyModel",
      _model_module: "anywidget",
      _model_module_version: ANYWIDGET_VERSION,
      _view_name: "AnyView",
      _view_module: "anywidget",
      _view_module_version: ANYWIDGET_VERSION,
    };
  }

  initialize(attributes, options) {
    super.initialize(attributes, options);
    injectCss(this.get("_css"), this.get("_anywidget_id") || this.model_id);
    // Each view reports a failure; this keeps an unviewed failure from being an unhandled rejection.
    this.definition = AnyModel.load(this.get("_esm")).then(async (definition) => {
      await definition.initialize?.({ model: modelAdapter(this, INITIALIZE) });
      return definition;
    });
    this.definition.catch(() => {});
  }

  /** Imports module source into a widget definition; tests replace it. */
  static async load(esm) {
    return widgetDefinition(await importSource(esm));
  }
}

export class AnyView extends DOMWidgetView {
  async render() {
    try {
      const definition = await this.model.definition;
      const cleanup = await definition.render?.({ model: modelAdapter(this.model, this), el: this.el });
      this.cleanup = typeof cleanup === "function" ? cleanup : null;
    } catch (error) {
      console.error(`cnnvis export: could not render widget ${this.model.model_id}`, error);
      this.el.replaceChildren(errorNote(`This widget could not be rendered: ${error?.message ?? error}`));
    }
  }

  remove() {
    this.cleanup?.();
    this.cleanup = null;
    this.model.off(null, null, this);
    return super.remove();
  }
}
