// Renders the widgets of an exported notebook page from its saved state.
// nbconvert writes one widget-state script holding every model, and a
// widget-view script wherever a widget output sat; each view is drawn in a
// new element placed where its script is (as html-manager's libembed does).
import { errorNote } from "./anywidget.js";

export const STATE_SELECTOR = 'script[type="application/vnd.jupyter.widget-state+json"]';
export const VIEW_SELECTOR = 'script[type="application/vnd.jupyter.widget-view+json"]';
// How long one output may take to draw its nested views before it is marked done anyway.
const SETTLE_MS = 20_000;

/** The widget state of every state script in `doc`, merged; null when there is none. */
export function readState(doc) {
  let merged = null;
  for (const script of doc.querySelectorAll(STATE_SELECTOR)) {
    try {
      const state = JSON.parse(script.textContent);
      merged ??= { version_major: state.version_major ?? 2, version_minor: state.version_minor ?? 0, state: {} };
      Object.assign(merged.state, state.state || {});
    } catch (error) {
      console.error("cnnvis export: unreadable widget state", error);
    }
  }
  return merged;
}

/** The model id a widget-view script shows, or null. */
export function viewModelId(script) {
  try {
    return JSON.parse(script.textContent).model_id ?? null;
  } catch {
    return null;
  }
}

/** Sub-views a container view draws asynchronously: box children, a bqplot figure's marks and axes. */
function childViews(view) {
  return ["children_views", "mark_views", "axis_views"].flatMap((key) => view?.[key]?.views ?? []);
}

/**
 * Resolves once `view` and its sub-views have rendered; the number of
 * sub-views that failed (their containers log those errors themselves).
 */
export async function settled(view) {
  const results = await Promise.allSettled(childViews(view));
  let failed = results.filter((r) => r.status === "rejected").length;
  for (const r of results) if (r.status === "fulfilled") failed += await settled(r.value);
  return failed;
}

const withTimeout = (promise, ms) =>
  Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(0), ms))]);

function outputElement(doc, script) {
  const host = doc.createElement("div");
  host.className = "widget-subarea cnnvis-export-view";
  const previous = script.previousElementSibling; // a static snapshot some exporters put before the script
  if (previous?.tagName === "IMG" && previous.classList.contains("jupyter-widget")) previous.remove();
  script.before(host);
  return host;
}

function fail(host, text, error) {
  console.error(`cnnvis export: ${text}`, error);
  host.replaceChildren(errorNote(`${text}: ${error?.message ?? error}`, host.ownerDocument));
  host.dataset.cnnvisRendered = "error";
}

async function renderView(manager, models, script) {
  const doc = script.ownerDocument;
  const host = outputElement(doc, script);
  const id = viewModelId(script);
  const model = models.get(id);
  if (!model) {
    // the widget was closed before the notebook was saved, so its state is gone
    console.warn(`cnnvis export: no saved state for widget ${id}`);
    host.replaceChildren(errorNote("This widget was closed before the notebook was saved.", doc));
    host.dataset.cnnvisRendered = "missing";
    return "missing";
  }
  try {
    const view = await manager.create_view(model);
    await manager.display_view(view, host);
    const failed = await withTimeout(settled(view), SETTLE_MS);
    host.dataset.cnnvisRendered = failed ? "partial" : "true";
    return failed ? "partial" : "rendered";
  } catch (error) {
    fail(host, "This widget could not be rendered", error);
    return "error";
  }
}

/**
 * Render every widget view of `doc` with the manager `createManager()`
 * returns (one with set_state, create_view and display_view). Marks each
 * output with data-cnnvis-rendered ("true", "partial", "missing", "error")
 * and the page's root with data-cnnvis-widgets="done" at the end. Resolves
 * to the count of each outcome.
 */
export async function renderPage(doc, { createManager }) {
  const counts = { rendered: 0, partial: 0, missing: 0, error: 0 };
  const state = readState(doc);
  const scripts = [...doc.querySelectorAll(VIEW_SELECTOR)].filter((s) => !s.dataset.cnnvisSeen);
  scripts.forEach((s) => (s.dataset.cnnvisSeen = "true"));
  if (state && scripts.length) {
    let models = null;
    const manager = createManager();
    try {
      models = new Map((await manager.set_state(state)).map((model) => [model.model_id, model]));
    } catch (error) {
      for (const script of scripts) fail(outputElement(doc, script), "The saved widget state could not be read", error);
      counts.error += scripts.length;
    }
    if (models) {
      for (const outcome of await Promise.all(scripts.map((s) => renderView(manager, models, s)))) counts[outcome] += 1;
    }
  }
  doc.documentElement.dataset.cnnvisWidgets = "done";
  return counts;
}
