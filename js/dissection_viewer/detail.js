// A unit's detail: its label, category and IoU, the mask choice and opacity,
// a legend of the mask colours, its top images on canvases, and its best label
// in every category.
import { h } from "../lib/dom.js";
import { formatIou, MASK_MODES } from "./data.js";
import { buildToggleRow } from "./gallery.js";

function swatch(colour, text, kind) {
  return h("span", { className: `cnnvis-dis-legend-item cnnvis-dis-legend-${kind}` }, [
    h("span", { className: "cnnvis-dis-swatch", style: { background: colour } }),
    h("span", { text }),
  ]);
}

/** The best concept per category: a table with the unit's label row marked. */
export function buildBestTable({ categories, record }) {
  const rows = categories.map((category, i) => {
    const [label, iou] = record.best[i] ?? ["", 0];
    const own = category === record.category;
    return h("tr", { className: own ? "cnnvis-dis-own" : null, "data-category": category }, [
      h("th", { scope: "row", text: category }),
      h("td", { text: label || "–" }),
      h("td", { className: "cnnvis-dis-num", text: label ? formatIou(iou) : "–" }),
    ]);
  });
  return h("table", { className: "cnnvis-dis-best" }, [
    h("caption", { text: "Best label per category" }),
    h("thead", {}, [h("tr", {}, [h("th", { text: "category" }), h("th", { text: "concept" }), h("th", { text: "IoU" })])]),
    h("tbody", {}, rows),
  ]);
}

/**
 * The detail of `record`. `imageCount` canvases are made (one per top image,
 * `data-index` i, with `imageIndices[i]` in the caption); the caller draws
 * them. Returns `{node, canvases, opacityInput, opacityText}`.
 */
export function buildDetail({ record, categories, threshold, mode, opacity, colours, imageCount, imageIndices, status }) {
  const verdict = record.detector ? "detector" : `not a detector: IoU below ${threshold}`;
  const opacityInput = h("input", {
    type: "range",
    className: "cnnvis-dis-opacity",
    min: 0,
    max: 1,
    step: 0.05,
    value: opacity,
    "aria-label": "Mask opacity",
    "data-lm-suppress-shortcuts": "true",
  });
  const opacityText = h("span", { className: "cnnvis-dis-opacity-value", text: `${Math.round(opacity * 100)}%` });
  const canvases = Array.from({ length: imageCount }, (_, i) =>
    h("canvas", { className: "cnnvis-dis-overlay", width: 1, height: 1, "data-index": i, "aria-label": `top image ${i + 1}` }),
  );
  const figures = canvases.map((canvas, i) =>
    h("figure", { className: "cnnvis-dis-figure" }, [
      canvas,
      h("figcaption", { text: imageIndices[i] !== undefined ? `#${i + 1} · image ${imageIndices[i]}` : `#${i + 1}` }),
    ]),
  );
  const node = h("section", { className: "cnnvis-dis-detail", "data-unit": record.unit, "aria-label": `unit ${record.unit}` }, [
    h("div", { className: "cnnvis-dis-detail-head" }, [
      h("span", { className: "cnnvis-dis-detail-title", text: `unit ${record.unit} · ${record.label}` }),
      h("span", { className: "cnnvis-dis-detail-meta", text: `${record.category} · IoU ${formatIou(record.iou)} · ${verdict}` }),
      h("button", {
        type: "button",
        className: "cnnvis-dis-close",
        "data-lm-suppress-shortcuts": "true",
        "data-close": "true",
        "aria-label": "Close the unit's detail",
        text: "×",
      }),
    ]),
    h("div", { className: "cnnvis-dis-detail-controls" }, [
      buildToggleRow({ label: "Mask", key: "mask", options: MASK_MODES, chosen: mode, className: "cnnvis-dis-mask" }),
      h("label", { className: "cnnvis-dis-opacity-row" }, [h("span", { className: "cnnvis-dis-label", text: "Opacity" }), opacityInput, opacityText]),
    ]),
    h("div", { className: "cnnvis-dis-legend" }, [
      swatch(colours.unit, `unit ${record.unit} active (above its threshold)`, "unit"),
      swatch(colours.concept, `ground truth: ${record.label}`, "concept"),
    ]),
    status ? h("div", { className: "cnnvis-dis-status", text: status }) : null,
    h("div", { className: "cnnvis-dis-detail-body" }, [
      h("div", { className: "cnnvis-dis-figures" }, figures.length ? figures : [h("span", { className: "cnnvis-dis-empty", text: "loading images…" })]),
      buildBestTable({ categories, record }),
    ]),
  ]);
  return { node, canvases, opacityInput, opacityText };
}
