// Unit metadata of a Network Dissection layer (Bau et al. 2017): filtering by
// the label's category, sorting by IoU or unit number, paging, and the
// per-category counts of the layer summary.
import { clampPage, pageCount } from "../lib/paging.js";

export const SORT_ORDERS = [
  ["iou", "IoU"],
  ["unit", "unit"],
];

export const MASK_MODES = [
  ["unit", "unit"],
  ["concept", "concept"],
  ["both", "both"],
];

/** The kernel's unit records with every field present and typed. */
export function normalizeUnits(raw) {
  return (Array.isArray(raw) ? raw : []).map((record, i) => ({
    unit: Number.isInteger(record?.unit) ? record.unit : i,
    concept: Number.isInteger(record?.concept) ? record.concept : -1,
    label: String(record?.label ?? ""),
    category: String(record?.category ?? ""),
    iou: Number.isFinite(record?.iou) ? record.iou : 0,
    detector: Boolean(record?.detector),
    best: Array.isArray(record?.best) ? record.best.map(([label, iou]) => [String(label ?? ""), Number(iou) || 0]) : [],
  }));
}

/** Units whose label is in `category`; all of them when `category` is empty. */
export function filterUnits(units, category) {
  return category ? units.filter((u) => u.category === category) : units.slice();
}

/** A sorted copy: by IoU, highest first (ties by unit number), or by unit number. */
export function sortUnits(units, sortBy) {
  const byUnit = (a, b) => a.unit - b.unit;
  return units.slice().sort(sortBy === "iou" ? (a, b) => b.iou - a.iou || byUnit(a, b) : byUnit);
}

/**
 * The gallery page: `{units, page, pages, total}` where `units` are the
 * records on the (clamped) page, `total` the units that pass the filter.
 */
export function galleryPage(units, { category = "", sortBy = "iou", page = 0, pageSize = 24 } = {}) {
  const shown = sortUnits(filterUnits(units, category), sortBy);
  const size = Math.max(1, Math.floor(Number(pageSize) || 1));
  const pages = pageCount(shown.length, size);
  const current = clampPage(page, pages);
  return { units: shown.slice(current * size, (current + 1) * size), page: current, pages, total: shown.length };
}

/**
 * Per category: `units` labelled in it, `detectors` among them, and
 * `concepts`, the unique concepts its detectors are labelled with (the
 * number Bau et al. plot per category).
 */
export function categoryCounts(units, categories) {
  const counts = new Map(categories.map((c) => [c, { units: 0, detectors: 0, concepts: 0 }]));
  const seen = new Map(categories.map((c) => [c, new Set()]));
  for (const u of units) {
    if (!counts.has(u.category)) {
      counts.set(u.category, { units: 0, detectors: 0, concepts: 0 });
      seen.set(u.category, new Set());
    }
    const entry = counts.get(u.category);
    entry.units += 1;
    if (u.detector) {
      entry.detectors += 1;
      seen.get(u.category).add(u.label);
    }
  }
  for (const [category, labels] of seen) counts.get(category).concepts = labels.size;
  return counts;
}

/** "0.083"; "–" when not a number. */
export function formatIou(iou) {
  return typeof iou === "number" && Number.isFinite(iou) ? iou.toFixed(3) : "–";
}

/** "26 units labelled part, 9 detectors" / "64 units, 43 detectors". */
export function describeFilter(total, detectors, category) {
  const units = `${total} unit${total === 1 ? "" : "s"}`;
  const found = `${detectors} detector${detectors === 1 ? "" : "s"}`;
  return category ? `${units} labelled ${category}, ${found}` : `${units}, ${found}`;
}

/** `{unit -> {image, mask}}` from the kernel's `tile_images` answer, when it is for `layer`. */
export function tileImagesByUnit(answer, layer) {
  const byUnit = new Map();
  if (!answer || answer.layer !== layer || !Array.isArray(answer.units)) return byUnit;
  answer.units.forEach((unit, i) => {
    byUnit.set(unit, { image: answer.images?.[i] ?? null, mask: answer.masks?.[i] ?? null });
  });
  return byUnit;
}

/** Whether two lists of unit numbers are equal. */
export function sameUnits(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => v === b[i]);
}
