// The gallery's parts: category chips (the filter), sort toggles, pager and
// one tile per unit (its top image with its mask on a canvas, unit number,
// label, category and IoU).
import { h } from "../lib/dom.js";
import { describeFilter, formatIou } from "./data.js";

function toggle(className, data, text, pressed, title) {
  return h("button", {
    type: "button",
    className: `cnnvis-dis-toggle ${className}`,
    "data-lm-suppress-shortcuts": "true",
    ...data,
    "aria-pressed": String(pressed),
    title,
    text,
  });
}

/**
 * "all" plus one chip per category (units labelled in it); the chosen one
 * pressed. `counts` is categoryCounts(); each chip carries `data-category`.
 */
export function buildCategoryChips({ categories, counts, chosen, totalUnits }) {
  const all = toggle("cnnvis-dis-chip", { "data-category": "" }, `all ${totalUnits}`, !chosen, "Show every unit");
  const chips = categories.map((category) => {
    const c = counts.get(category) ?? { units: 0, detectors: 0, concepts: 0 };
    return toggle(
      "cnnvis-dis-chip",
      { "data-category": category },
      `${category} ${c.units}`,
      category === chosen,
      `${describeFilter(c.units, c.detectors, category)}; ${c.concepts} unique concepts detected`,
    );
  });
  return h("div", { className: "cnnvis-dis-chips", role: "group", "aria-label": "Category" }, [
    h("span", { className: "cnnvis-dis-label", text: "Category" }),
    all,
    ...chips,
  ]);
}

/** A labelled row of toggles; `options` are [value, text] pairs, each button carrying `data-<key>`. */
export function buildToggleRow({ label, key, options, chosen, className }) {
  return h("div", { className: "cnnvis-dis-toggles", role: "group", "aria-label": label }, [
    h("span", { className: "cnnvis-dis-label", text: label }),
    ...options.map(([value, text]) => toggle(className, { [`data-${key}`]: value }, text, value === chosen, `${label}: ${text}`)),
  ]);
}

/** Previous / "page 2 of 3" / next; buttons carry `data-page-step` (-1 or 1). */
export function buildPager({ page, pages }) {
  const step = (delta, text, label, disabled) =>
    h("button", {
      type: "button",
      className: "cnnvis-dis-page-step",
      "data-lm-suppress-shortcuts": "true",
      "data-page-step": delta,
      "aria-label": label,
      disabled,
      text,
    });
  return h("div", { className: "cnnvis-dis-pager", hidden: pages <= 1 }, [
    step(-1, "‹", "Previous page", page <= 0),
    h("span", { className: "cnnvis-dis-page", text: `page ${page + 1} of ${pages}` }),
    step(1, "›", "Next page", page >= pages - 1),
  ]);
}

/**
 * One unit's tile: a canvas for its top image and mask, and its caption.
 * Carries `data-unit`, `data-category` and `data-detector`.
 */
export function buildTile({ record, selected, threshold }) {
  const canvas = h("canvas", { className: "cnnvis-dis-tile-canvas", width: 1, height: 1, "aria-hidden": "true" });
  const verdict = record.detector ? "detector" : `not a detector (IoU below ${threshold})`;
  return h(
    "button",
    {
      type: "button",
      className: `cnnvis-dis-tile${selected ? " cnnvis-selected" : ""}`,
      "data-lm-suppress-shortcuts": "true",
      "data-unit": record.unit,
      "data-category": record.category,
      "data-detector": String(record.detector),
      "aria-pressed": String(selected),
      title: `unit ${record.unit}: ${record.label} (${record.category}), IoU ${formatIou(record.iou)}, ${verdict}`,
    },
    [
      h("span", { className: "cnnvis-dis-tile-image" }, [canvas]),
      h("span", { className: "cnnvis-dis-tile-head" }, [
        h("span", { className: "cnnvis-dis-unit", text: `#${record.unit}` }),
        h("span", { className: "cnnvis-dis-tile-label", text: record.label }),
      ]),
      h("span", { className: "cnnvis-dis-tile-meta" }, [
        h("span", { className: "cnnvis-dis-category", text: record.category }),
        h("span", { className: "cnnvis-dis-iou", text: `IoU ${formatIou(record.iou)}` }),
      ]),
    ],
  );
}
