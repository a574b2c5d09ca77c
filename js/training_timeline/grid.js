// The timeline grid: a header row of epochs, then one row per unit with a
// cell per recorded epoch (top crop, projection, AM image when recorded).
import { h } from "../lib/dom.js";
import { cellKey, cellLabel, epochLabel } from "./data.js";

function image(className, url, alt) {
  if (!url) return h("span", { className: `${className} cnnvis-tl-missing`, title: "no image" });
  return h("img", { className, src: url, alt, draggable: "false" });
}

/** The images of one grid cell (the top image only). */
export function cellImages(entry, unitText) {
  const { cell, crops, projections, am } = entry;
  const where = `${unitText}, ${epochLabel(cell.epoch)}`;
  return [
    image("cnnvis-tl-crop", crops[0], `${where}, top image`),
    projections.length ? image("cnnvis-tl-projection", projections[0], `${where}, DeconvNet projection`) : null,
    am ? image("cnnvis-tl-am", am, `${where}, activation maximization`) : null,
  ];
}

/**
 * The grid for `units` x `epochs`. `onEpoch(column)` runs when an epoch
 * header is pressed; `onCell(unit, column)` when a cell is.
 * Returns `{node, heads, cells}`: heads per column, cells as rows of columns.
 */
export function buildGrid({ layer, units, epochs, prepared, onEpoch, onCell }) {
  const heads = epochs.map((epoch, column) =>
    h("button", {
      type: "button",
      className: "cnnvis-tl-head",
      "data-lm-suppress-shortcuts": "true",
      "data-column": column,
      "data-epoch": epoch,
      text: epochLabel(epoch),
      title: `Show ${epochLabel(epoch)}`,
      onClick: () => onEpoch(column),
    }),
  );
  const cells = [];
  const rows = units.map((unit) => {
    const unitText = layer ? `${layer} unit ${unit}` : `unit ${unit}`;
    const row = epochs.map((epoch, column) => {
      const entry = prepared.get(cellKey(unit, epoch));
      if (!entry) return h("div", { className: "cnnvis-tl-cell cnnvis-tl-empty", "data-column": column });
      return h(
        "button",
        {
          type: "button",
          className: "cnnvis-tl-cell",
          "data-lm-suppress-shortcuts": "true",
          "data-unit": unit,
          "data-epoch": epoch,
          "data-column": column,
          "aria-label": `${cellLabel(layer, entry.cell)}. Show details.`,
          onClick: () => onCell(unit, column),
        },
        cellImages(entry, unitText),
      );
    });
    cells.push(row);
    return [h("div", { className: "cnnvis-tl-unit", "data-unit": unit, text: `unit ${unit}`, title: unitText }), ...row];
  });
  const node = h("div", { className: "cnnvis-tl-grid", role: "group", "aria-label": "Units by epoch" }, [
    h("div", { className: "cnnvis-tl-corner", text: layer || "" }),
    ...heads,
    ...rows.flat(),
  ]);
  node.style.setProperty("grid-template-columns", `auto repeat(${Math.max(epochs.length, 1)}, max-content)`);
  return { node, heads, cells };
}
