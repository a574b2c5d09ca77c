// Dissection viewer: an anywidget front end for one panel of Network
// Dissection results (Bau et al. 2017). Category chips filter the unit
// gallery (the kernel's bar chart sets the same `category`), the gallery is
// sorted by IoU or unit and paged, and a clicked unit opens its top images on
// canvases with the unit's mask and its concept's ground truth drawn over them.
// Images are not in the unit metadata: the view asks for the units of its page
// (`requested_units`) and for the opened unit (`selected_unit`), and draws the
// kernel's answers (`tile_images`, `detail`). A click on the kernel's bar chart
// filters too, handled in the browser (chart_link.js).
import { h } from "../lib/dom.js";
import { linkChart } from "./chart_link.js";
import { CSS } from "./style.js";
import {
  SORT_ORDERS,
  categoryCounts,
  describeFilter,
  galleryPage,
  normalizeUnits,
  sameUnits,
  tileImagesByUnit,
} from "./data.js";
import { CONCEPT_RGB, UNIT_RGB, parseColour } from "./masks.js";
import { canvasScale, decodeImage, drawOverlay } from "./canvas.js";
import { buildCategoryChips, buildPager, buildTile, buildToggleRow } from "./gallery.js";
import { buildDetail } from "./detail.js";

// A detail canvas is about this many pixels wide (whole-number magnification of the image).
const DETAIL_SIDE = 128;
// Decoded tile images kept per view before the cache starts afresh.
const MAX_CACHED = 256;
/** How long the units' images may go unanswered before we assume no kernel (an exported page). */
export const KERNEL_TIMEOUT_MS = 4000;
export const NO_KERNEL_IMAGES =
  "Some units' images need a running kernel; this page holds those of the units it was saved with.";

function render({ model, el }) {
  let units = [];
  let categories = [];
  let tileCanvases = new Map();
  let detailParts = null;
  let detailImages = [];
  let tileGeneration = 0;
  let detailGeneration = 0;
  const bitmaps = new Map();
  let waiting = null; // the timer of a tile-image request
  let note = "";

  const title = h("div", { className: "cnnvis-title" });
  const status = h("div", { className: "cnnvis-dis-status", role: "status" });
  const chipSlot = h("div", { className: "cnnvis-dis-chip-slot" });
  const sortSlot = h("div", { className: "cnnvis-dis-sort-slot" });
  const pagerSlot = h("div", { className: "cnnvis-dis-pager-slot" });
  const count = h("div", { className: "cnnvis-dis-count", "aria-live": "polite" });
  const detailSlot = h("div", { className: "cnnvis-dis-detail-slot" });
  const grid = h("div", { className: "cnnvis-dis-grid" });
  const root = h("div", { className: "cnnvis-dissection", "data-lm-suppress-shortcuts": "true" }, [
    h("style", { text: CSS }),
    title,
    status,
    h("div", { className: "cnnvis-dis-bar" }, [chipSlot]),
    h("div", { className: "cnnvis-dis-bar" }, [sortSlot, pagerSlot]),
    count,
    detailSlot,
    grid,
  ]);

  const layer = () => String(model.get("layer") ?? "");
  const threshold = () => Number(model.get("iou_threshold") ?? 0.04);
  const opacity = () => Math.min(1, Math.max(0, Number(model.get("opacity") ?? 0.45)));
  const colours = () => ({
    unit: parseColour(model.get("unit_colour"), UNIT_RGB),
    concept: parseColour(model.get("concept_colour"), CONCEPT_RGB),
  });
  const cssColour = (rgb) => `rgb(${rgb.join(", ")})`;
  const query = () => ({
    category: String(model.get("category") ?? ""),
    sortBy: model.get("sort_by") === "unit" ? "unit" : "iou",
    page: Number(model.get("page")) || 0,
    pageSize: Number(model.get("page_size")) || 24,
  });

  function syncTitle() {
    const text = [model.get("title"), layer()].filter(Boolean).join(" · ");
    title.textContent = text;
    title.hidden = !text;
  }

  function syncStatus() {
    const text = note || String(model.get("status") ?? "");
    status.textContent = text;
    status.hidden = !text;
  }

  function syncSize() {
    const side = Math.max(16, Number(model.get("tile_size")) || 96);
    root.style.setProperty("--cnnvis-dis-tile", `${side}px`);
  }

  function counts() {
    const own = categoryCounts(units, categories);
    const summary = model.get("summary") || {};
    for (const [category, entry] of Object.entries(summary)) {
      if (own.has(category) && Number.isFinite(entry?.concepts)) own.get(category).concepts = entry.concepts;
    }
    return own;
  }

  function syncData() {
    units = normalizeUnits(model.get("units"));
    categories = (model.get("categories") || []).map(String);
    bitmaps.clear();
    syncTitle();
    syncGallery();
    syncDetail();
  }

  function syncGallery() {
    const q = query();
    const shown = galleryPage(units, q);
    if (shown.page !== q.page) {
      model.set("page", shown.page);
      model.save_changes();
      return; // the page change renders again
    }
    const tally = counts();
    chipSlot.replaceChildren(buildCategoryChips({ categories, counts: tally, chosen: q.category, totalUnits: units.length }));
    sortSlot.replaceChildren(buildToggleRow({ label: "Sort by", key: "sort", options: SORT_ORDERS, chosen: q.sortBy, className: "cnnvis-dis-sort" }));
    pagerSlot.replaceChildren(buildPager(shown));
    const detectors = shown.total === 0 ? 0 : units.filter((u) => (!q.category || u.category === q.category) && u.detector).length;
    count.textContent = describeFilter(shown.total, detectors, q.category);
    const selected = Number(model.get("selected_unit"));
    tileGeneration += 1;
    tileCanvases = new Map();
    const tiles = shown.units.map((record) => {
      const tile = buildTile({ record, selected: record.unit === selected, threshold: threshold() });
      tileCanvases.set(record.unit, tile.querySelector("canvas"));
      return tile;
    });
    grid.replaceChildren(...(tiles.length ? tiles : [h("span", { className: "cnnvis-dis-empty", text: "No units." })]));
    const wanted = shown.units.map((u) => u.unit);
    if (!sameUnits(wanted, model.get("requested_units"))) {
      model.set("requested_units", wanted);
      model.save_changes();
    }
    clearTimeout(waiting);
    waiting = setTimeout(() => {
      waiting = null;
      if (unanswered().length) {
        note = NO_KERNEL_IMAGES;
        syncStatus();
      }
    }, KERNEL_TIMEOUT_MS);
    drawTiles();
  }

  /** Units shown whose images the kernel has not sent. */
  function unanswered() {
    const answer = tileImagesByUnit(model.get("tile_images"), layer());
    return [...tileCanvases.keys()].filter((unit) => !answer.get(unit)?.image);
  }

  function bitmap(key, data) {
    const cached = bitmaps.get(key);
    if (cached && cached.data === data) return cached.promise;
    if (bitmaps.size >= MAX_CACHED) bitmaps.clear();
    const promise = decodeImage(data).catch(() => null);
    bitmaps.set(key, { data, promise });
    return promise;
  }

  function drawTiles() {
    if (note && !unanswered().length) {
      note = "";
      syncStatus();
    }
    const answer = tileImagesByUnit(model.get("tile_images"), layer());
    const [maskHeight, maskWidth] = model.get("tile_images")?.mask_shape ?? [0, 0];
    const side = Math.max(16, Number(model.get("tile_size")) || 96);
    const current = tileGeneration;
    for (const [unit, canvas] of tileCanvases) {
      const images = answer.get(unit);
      if (!images?.image) continue;
      bitmap(`${layer()}/${unit}`, images.image).then((image) => {
        if (!image || current !== tileGeneration || tileCanvases.get(unit) !== canvas) return;
        drawOverlay(canvas, image, {
          scale: canvasScale(image.width, image.height, side),
          masks: { unit: images.mask },
          maskWidth,
          maskHeight,
          mode: "unit",
          opacity: opacity(),
          unitColour: colours().unit,
        });
      });
    }
  }

  function syncSelection() {
    const selected = Number(model.get("selected_unit"));
    for (const tile of grid.querySelectorAll(".cnnvis-dis-tile")) {
      const on = Number(tile.dataset.unit) === selected;
      tile.classList.toggle("cnnvis-selected", on);
      tile.setAttribute("aria-pressed", String(on));
    }
    syncDetail();
  }

  function syncDetail() {
    const selected = Number(model.get("selected_unit"));
    const record = units.find((u) => u.unit === selected);
    detailGeneration += 1;
    if (!record) {
      detailParts = null;
      detailImages = [];
      detailSlot.replaceChildren();
      return;
    }
    const detail = model.get("detail") || {};
    const ready = detail.layer === layer() && detail.unit === selected && Array.isArray(detail.images);
    const images = ready ? detail.images : [];
    const colour = colours();
    detailParts = buildDetail({
      record,
      categories,
      threshold: threshold(),
      mode: model.get("mask") || "both",
      opacity: opacity(),
      colours: { unit: cssColour(colour.unit), concept: cssColour(colour.concept) },
      imageCount: images.length,
      imageIndices: ready ? detail.image_indices || [] : [],
    });
    detailSlot.replaceChildren(detailParts.node);
    const current = detailGeneration;
    detailImages = images.map(() => null);
    images.forEach((data, i) => {
      decodeImage(data)
        .catch(() => null)
        .then((image) => {
          if (!image || current !== detailGeneration) return;
          detailImages[i] = image;
          drawDetailCanvas(i);
        });
    });
  }

  function drawDetailCanvas(i) {
    const detail = model.get("detail") || {};
    const image = detailImages[i];
    const canvas = detailParts?.canvases[i];
    if (!image || !canvas) return;
    const [maskHeight, maskWidth] = detail.mask_shape ?? [0, 0];
    drawOverlay(canvas, image, {
      scale: canvasScale(image.width, image.height, DETAIL_SIDE),
      masks: { unit: detail.unit_masks?.[i], concept: detail.concept_masks?.[i] },
      maskWidth,
      maskHeight,
      mode: model.get("mask") || "both",
      opacity: opacity(),
      unitColour: colours().unit,
      conceptColour: colours().concept,
    });
  }

  function syncMasks() {
    if (detailParts) {
      const mode = model.get("mask") || "both";
      for (const button of detailParts.node.querySelectorAll(".cnnvis-dis-mask")) {
        button.setAttribute("aria-pressed", String(button.dataset.mask === mode));
      }
      detailParts.opacityInput.value = String(opacity());
      detailParts.opacityText.textContent = `${Math.round(opacity() * 100)}%`;
      detailImages.forEach((_, i) => drawDetailCanvas(i));
    }
    drawTiles();
  }

  function save(changes) {
    for (const [name, value] of Object.entries(changes)) model.set(name, value);
    model.save_changes();
  }

  function onClick(event) {
    const button = event.target.closest?.("button");
    if (!button || button.disabled || !root.contains(button)) return;
    const data = button.dataset;
    if (button.classList.contains("cnnvis-dis-tile")) {
      const unit = Number(data.unit);
      save({ selected_unit: Number(model.get("selected_unit")) === unit ? -1 : unit });
    } else if (button.classList.contains("cnnvis-dis-chip")) {
      const category = data.category === model.get("category") ? "" : data.category;
      save({ category, page: 0 });
    } else if (data.sort !== undefined) {
      save({ sort_by: data.sort, page: 0 });
    } else if (data.pageStep !== undefined) {
      save({ page: Math.max(0, (Number(model.get("page")) || 0) + Number(data.pageStep)) });
    } else if (data.mask !== undefined) {
      save({ mask: data.mask });
    } else if (data.close !== undefined) {
      save({ selected_unit: -1 });
    }
  }

  function onInput(event) {
    if (!event.target.classList?.contains("cnnvis-dis-opacity")) return;
    save({ opacity: Number(event.target.value) });
  }

  root.addEventListener("click", onClick);
  root.addEventListener("input", onInput);

  const handlers = {
    title: syncTitle,
    layer: syncData,
    units: syncData,
    categories: syncData,
    summary: syncGallery,
    iou_threshold: syncGallery,
    category: syncGallery,
    sort_by: syncGallery,
    page: syncGallery,
    page_size: syncGallery,
    tile_images: drawTiles,
    tile_size: () => {
      syncSize();
      drawTiles();
    },
    selected_unit: syncSelection,
    detail: syncDetail,
    mask: syncMasks,
    opacity: syncMasks,
    unit_colour: syncMasks,
    concept_colour: syncMasks,
    status: syncStatus,
  };
  const listeners = Object.entries(handlers).map(([name, callback]) => {
    const wrapped = () => callback();
    model.on(`change:${name}`, wrapped);
    return [`change:${name}`, wrapped];
  });

  syncSize();
  syncStatus();
  syncData();
  el.append(root);

  return () => {
    for (const [event, callback] of listeners) model.off(event, callback);
    root.removeEventListener("click", onClick);
    root.removeEventListener("input", onInput);
    clearTimeout(waiting);
    tileGeneration += 1;
    detailGeneration += 1;
    bitmaps.clear();
    root.remove();
  };
}

export default { initialize: ({ model }) => linkChart(model), render };
