// The error chart's lines (bqplot Lines widgets, the `chart_lines` trait, one
// per `chart_keys` entry [method, perturbation]) follow the toggles in the
// browser: the combination shown is drawn thick and opaque, the others thin
// and faded, with or without a kernel (an exported page). Once it does, it sets
// `styles_chart` and the kernel leaves the lines to it.
import { resolveReferences, takeOver } from "../lib/references.js";

// As inversion_view.py's SHOWN_WIDTH, OTHER_WIDTH, SHOWN_OPACITY and OTHER_OPACITY.
export const SHOWN = { stroke_width: 4.0, opacity: 1.0 };
export const OTHER = { stroke_width: 1.5, opacity: 0.4 };

/** The style of the line for `key` ([method, perturbation]) while `shown` is the combination on view. */
export function lineStyle(key, shown) {
  const on = key?.[0] === shown[0] && key?.[1] === shown[1];
  return on ? SHOWN : OTHER;
}

/** Follow `model`'s toggles with its chart lines (anywidget's initialize()); returns a stop function. */
export function linkLines(model) {
  let lines = [];
  let generation = 0;

  function highlight() {
    const shown = [String(model.get("method")), String(model.get("perturbation"))];
    const keys = model.get("chart_keys") || [];
    lines.forEach((line, i) => {
      if (!line) return;
      const style = lineStyle(keys[i], shown);
      line.set("stroke_width", style.stroke_width);
      line.set("opacities", [style.opacity]);
      line.save_changes();
    });
  }

  async function attach() {
    const mine = ++generation;
    const found = await resolveReferences(model, model.get("chart_lines"));
    if (mine !== generation) return;
    lines = found;
    if (!lines.length || lines.some((line) => !line)) {
      lines = [];
      return; // the kernel keeps styling the lines
    }
    highlight();
    takeOver(model, "styles_chart");
  }

  model.on("change:chart_lines", attach);
  model.on("change:method", highlight);
  model.on("change:perturbation", highlight);
  attach();
  return () => {
    generation += 1;
    lines = [];
    model.off("change:chart_lines", attach);
    model.off("change:method", highlight);
    model.off("change:perturbation", highlight);
  };
}
