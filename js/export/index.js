// Renders anywidget models in exported HTML pages that have no kernel.
// It reads nbconvert's widget markup: one widget-state script holding every
// model, and a widget-view script wherever a widget output sat.
import { createStaticModel } from "./model.js";
import { decodeBase64, placeBuffers } from "./buffers.js";

export { createStaticModel, decodeBase64, placeBuffers };

export const STATE_SELECTOR = 'script[type="application/vnd.jupyter.widget-state+json"]';
export const VIEW_SELECTOR = 'script[type="application/vnd.jupyter.widget-view+json"]';

/** Import ES module source text (or a URL) in the browser. */
export async function importModule(esm) {
  if (/^(https?:|blob:|data:)/.test(esm.trim())) return import(esm.trim());
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  try {
    return await import(/* @vite-ignore */ url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** All models from every widget-state script in `doc`, keyed by model id. */
export function readModels(doc) {
  const models = {};
  for (const script of doc.querySelectorAll(STATE_SELECTOR)) {
    try {
      Object.assign(models, JSON.parse(script.textContent).state || {});
    } catch (error) {
      console.warn("cnnvis embed: unreadable widget state", error);
    }
  }
  return models;
}

/** The widget definition ({initialize?, render}) from an imported anywidget module. */
export async function widgetDefinition(mod) {
  let def = mod.default ?? mod;
  if (typeof def === "function") def = await def();
  if (!def || typeof def.render !== "function") throw new Error("module has no render()");
  return def;
}

function note(doc, text) {
  return Object.assign(doc.createElement("div"), { className: "cnnvis-embed-note", textContent: text });
}

/**
 * Render every widget view in `doc`. Returns the number of views rendered.
 * `loadModule(esm)` imports module source; tests inject their own.
 */
export async function renderAll(doc = document, { loadModule = importModule } = {}) {
  const models = readModels(doc);
  const live = new Map(); // model id -> Promise<{model, def}>, one per model
  let rendered = 0;

  const setUp = async (entry) => {
    const state = placeBuffers(entry.state || {}, entry.buffers || []);
    const model = createStaticModel(state);
    const css = state._css;
    if (typeof css === "string" && css.trim()) {
      doc.head.append(Object.assign(doc.createElement("style"), { textContent: css }));
    }
    const def = await widgetDefinition(await loadModule(String(state._esm || "")));
    await def.initialize?.({ model });
    return { model, def };
  };

  for (const script of doc.querySelectorAll(VIEW_SELECTOR)) {
    if (script.dataset.cnnvisRendered) continue;
    script.dataset.cnnvisRendered = "true";
    let id;
    try {
      id = JSON.parse(script.textContent).model_id;
    } catch {
      continue;
    }
    const entry = models[id];
    if (!entry) continue;
    if (entry.model_module !== "anywidget") {
      script.after(note(doc, `This widget needs a live kernel (model: ${entry.model_name}).`));
      continue;
    }
    const el = Object.assign(doc.createElement("div"), { className: "cnnvis-embed" });
    script.after(el);
    try {
      if (!live.has(id)) live.set(id, setUp(entry));
      const { model, def } = await live.get(id);
      await def.render({ model, el });
      rendered += 1;
    } catch (error) {
      console.error("cnnvis embed: could not render widget", id, error);
      el.replaceChildren(note(doc, `This widget could not be rendered: ${error?.message || error}`));
    }
  }
  return rendered;
}

// Run by itself only on pages that carry widget state, so importing this
// module (e.g. in tests) has no side effects.
function autoRun() {
  if (document.querySelector(STATE_SELECTOR)) renderAll(document);
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", autoRun, { once: true });
  } else {
    autoRun();
  }
}
