// The bar chart of category counts (a bqplot Bars widget, the `chart_bars`
// trait) filters the gallery in the browser, so a click works with or without
// a kernel (an exported page). bqplot's "select" click interaction sets the
// bars' `selected`; this toggles `category` to that bar's category, clears the
// selection (so the same bar can be clicked again) and fades the other bars.
// Once it listens, it sets `handles_bar_clicks` and the kernel leaves clicks to it.

import { followReference, referencedId, takeOver } from "../lib/references.js";

// As dissection_viewer.py's SELECTED_OPACITY and OTHER_OPACITY.
export const CHOSEN_OPACITY = 1.0;
export const OTHER_OPACITY = 0.3;

/** The bars' opacities: every bar opaque when no category is chosen, else only the chosen one. */
export function barOpacities(categories, chosen) {
  return categories.map((c) => (!chosen || c === chosen ? CHOSEN_OPACITY : OTHER_OPACITY));
}

/** The category after a click on bar `index`: that bar's, or "" when it was chosen already; null off the bars. */
export function toggledCategory(categories, current, index) {
  const category = categories[index];
  if (!Number.isInteger(index) || category === undefined) return null;
  return current === category ? "" : category;
}

export { referencedId };

/**
 * Follow the clicks on `model`'s chart bars (anywidget's initialize()).
 * Returns a function that stops following.
 */
export function linkChart(model) {
  const context = {}; // the listener context on the bars model
  let bars = null;

  const categories = () => (model.get("categories") || []).map(String);

  function onSelected() {
    const selected = bars?.get("selected");
    if (!selected || selected.length === 0) return;
    const category = toggledCategory(categories(), String(model.get("category") ?? ""), Number(selected[0]));
    if (category !== null) {
      model.set("category", category);
      model.set("page", 0);
      model.save_changes();
    }
    const clicked = bars;
    queueMicrotask(() => {
      clicked.set("selected", null);
      clicked.save_changes();
    });
  }

  function onCategory() {
    if (!bars) return;
    bars.set("opacities", barOpacities(categories(), String(model.get("category") ?? "")));
    bars.save_changes();
  }

  function detach() {
    bars?.off(null, null, context);
    bars = null;
  }

  const stopFollowing = followReference(model, "chart_bars", (found) => {
    detach();
    if (!found) return; // no chart found: the kernel keeps handling clicks
    bars = found;
    bars.on("change:selected", onSelected, context);
    takeOver(model, "handles_bar_clicks");
  });
  model.on("change:category", onCategory);
  return () => {
    stopFollowing();
    detach();
    model.off("change:category", onCategory);
  };
}
