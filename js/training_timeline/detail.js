// The detail panel for the selected unit at the current epoch, drawn from the
// cell data and the metrics alone (no kernel needed).
import { h } from "../lib/dom.js";
import { formatValue } from "../lib/format.js";
import { epochLabel } from "./data.js";

function figure(className, url, alt, caption) {
  return h("figure", {}, [
    url ? h("img", { className, src: url, alt }) : h("span", { className: `${className} cnnvis-tl-missing` }),
    h("figcaption", { text: caption }),
  ]);
}

/**
 * Panel for one prepared cell; `metrics` is a list of `[name, value]` pairs
 * at that epoch; `onClose` runs on the close button.
 */
export function buildDetail({ layer, entry, metrics, onClose }) {
  const { cell, crops, projections, am } = entry;
  const unitText = layer ? `${layer} unit ${cell.unit}` : `unit ${cell.unit}`;
  const title = `${unitText} · ${epochLabel(cell.epoch)}`;
  const figures = [];
  crops.forEach((url, i) => {
    const rank = crops.length > 1 ? ` ${i + 1}` : "";
    figures.push(figure("cnnvis-tl-detail-crop", url, `${title}, top image${rank}`, `top image${rank}`));
    if (projections[i] !== undefined) {
      figures.push(figure("cnnvis-tl-detail-projection", projections[i], `${title}, projection${rank}`, `projection${rank}`));
    }
  });
  if (am) figures.push(figure("cnnvis-tl-detail-am", am, `${title}, activation maximization`, "activation maximization"));

  const facts = [];
  cell.values.forEach((value, i) => {
    const rank = cell.values.length > 1 ? ` ${i + 1}` : "";
    facts.push([`activation${rank}`, formatValue(value)]);
    if (cell.indices[i] !== null && cell.indices[i] !== undefined) facts.push([`probe image${rank}`, `#${cell.indices[i]}`]);
  });
  if (cell.am_value !== null) facts.push(["AM objective", formatValue(cell.am_value)]);
  for (const [name, value] of metrics) facts.push([name, formatValue(value)]);

  return h(
    "section",
    { className: "cnnvis-tl-detail", role: "region", "aria-label": `Details: ${title}`, "data-unit": cell.unit, "data-epoch": cell.epoch },
    [
      h("div", { className: "cnnvis-tl-detail-title", text: title }),
      h("button", {
        type: "button",
        className: "cnnvis-tl-detail-close",
        "data-lm-suppress-shortcuts": "true",
        text: "×",
        title: "Close (Esc)",
        "aria-label": "Close details",
        onClick: onClose,
      }),
      h("div", { className: "cnnvis-tl-detail-body" }, [
        h("div", { className: "cnnvis-tl-detail-images" }, figures),
        h(
          "dl",
          { className: "cnnvis-tl-facts" },
          facts.flatMap(([name, value]) => [h("dt", { text: name }), h("dd", { text: value })]),
        ),
      ]),
    ],
  );
}
