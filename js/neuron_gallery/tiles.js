// Tile data normalisation and the grid tile element.
import { h } from "../lib/dom.js";
import { formatValue } from "../lib/format.js";
import { gridColumns } from "../lib/layout.js";

const asArray = (value) => (Array.isArray(value) ? value : []);

/** A tile object from the `tiles` trait with every field present and typed. */
export function normalizeTile(raw) {
  const unit = Math.trunc(Number(raw?.unit));
  const label = raw?.label ? String(raw.label) : `unit ${unit}`;
  return {
    unit,
    label,
    values: asArray(raw?.values),
    image_indices: asArray(raw?.image_indices),
    images: asArray(raw?.images),
    projections: asArray(raw?.projections),
    filter: raw?.filter ?? null,
    am: asArray(raw?.am),
    am_values: asArray(raw?.am_values),
    flags: asArray(raw?.flags).map(String),
  };
}

/**
 * Tiles ready to draw: `{tile, crops, projections, filter, am}` where `crops`
 * holds `{url, value, index}` per decodable image, `projections` the
 * DeconvNet projection of each crop in the same form, `filter` is a URL or
 * null and `am` holds `{url, value}` per activation-maximization image.
 * URLs come from `pool`, which owns (and later revokes) them.
 */
export function prepareTiles(tiles, pool) {
  return asArray(tiles).map((raw) => {
    const tile = normalizeTile(raw);
    const crops = [];
    tile.images.forEach((bytes, i) => {
      const url = pool.add(bytes);
      if (url) crops.push({ url, value: tile.values[i], index: tile.image_indices[i] });
    });
    const projections = [];
    tile.projections.forEach((bytes, i) => {
      const url = pool.add(bytes);
      if (url) projections.push({ url, value: tile.values[i], index: tile.image_indices[i] });
    });
    const am = [];
    tile.am.forEach((bytes, i) => {
      const url = pool.add(bytes);
      if (url) am.push({ url, value: tile.am_values[i] });
    });
    return { tile, crops, projections, filter: pool.add(tile.filter), am };
  });
}

/** Caption text for one crop: activation value and image index. */
export function cropCaption(crop) {
  const index = crop.index === undefined ? "" : `, image ${crop.index}`;
  return `activation ${formatValue(crop.value)}${index}`;
}

export function flagBadges(flags) {
  return flags.map((flag) => h("span", { className: "cnnvis-flag", text: flag }));
}

/** A grid of small images (crops or their projections) laid out like the crops. */
function imageGrid(className, itemClass, items, alt, title) {
  const grid = h(
    "div",
    { className },
    items.map((item, i) =>
      h("img", { className: itemClass, src: item.url, alt: alt(i), title: title(item), draggable: "false" }),
    ),
  );
  grid.style.setProperty("grid-template-columns", `repeat(${gridColumns(items.length)}, var(--cnnvis-tile))`);
  return grid;
}

/** The focusable grid tile for one prepared tile; `onSelect(unit)` on click/Enter/Space. */
export function buildTile({ tile, crops, projections = [], filter, am = [] }, onSelect) {
  const select = () => onSelect(tile.unit);
  const onKeydown = (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    select();
  };
  const best = crops.length ? `, top activation ${formatValue(crops[0].value)}` : "";
  const grid = imageGrid("cnnvis-crops", "cnnvis-crop", crops, (i) => `${tile.label}, image ${i + 1}`, cropCaption);
  const projected = projections.length
    ? imageGrid("cnnvis-projections", "cnnvis-projection", projections, (i) => `${tile.label}, projection of image ${i + 1}`,
        (item) => `DeconvNet projection: ${cropCaption(item)}`)
    : null;
  return h(
    "div",
    {
      className: "cnnvis-tile",
      role: "button",
      tabindex: "0",
      "data-unit": tile.unit,
      "aria-label": `${tile.label}${best}. Show details.`,
      onClick: select,
      onKeydown,
    },
    [
      h("div", { className: "cnnvis-tile-head" }, [
        h("span", { className: "cnnvis-label", text: tile.label, title: tile.label }),
        ...flagBadges(tile.flags),
      ]),
      projected ? h("div", { className: "cnnvis-tile-pair" }, [grid, projected]) : grid,
      h("div", { className: "cnnvis-tile-extras" }, [
        filter ? h("img", { className: "cnnvis-filter", src: filter, alt: `${tile.label}, filter`, title: "filter" }) : null,
        ...am.map((image, i) =>
          h("img", {
            className: "cnnvis-am",
            src: image.url,
            alt: `${tile.label}, activation maximization ${i + 1}`,
            title: `activation maximization: objective ${formatValue(image.value)}`,
            draggable: "false",
          }),
        ),
      ]),
    ],
  );
}
