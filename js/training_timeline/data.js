// The timeline's data: cells from the `cells` trait, object URLs for their
// images, labels, and the metrics at one epoch.
import { formatValue } from "../lib/format.js";

const asArray = (value) => (Array.isArray(value) ? value : []);
const asNumber = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** A cell object from the `cells` trait with every field present and typed. */
export function normalizeCell(raw) {
  return {
    unit: Math.trunc(Number(raw?.unit)),
    epoch: Math.trunc(Number(raw?.epoch)),
    images: asArray(raw?.images),
    projections: asArray(raw?.projections),
    values: asArray(raw?.values).map(asNumber),
    indices: asArray(raw?.indices).map(asNumber),
    am: raw?.am ?? null,
    am_value: asNumber(raw?.am_value),
  };
}

/**
 * Cells ready to draw, keyed by `${unit}/${epoch}`: the normalized cell plus
 * `crops`, `projections` (object URLs, null where bytes were empty) and `am`.
 * URLs come from `pool`, which owns (and later revokes) them.
 */
export function prepareCells(cells, pool) {
  const prepared = new Map();
  for (const raw of asArray(cells)) {
    const cell = normalizeCell(raw);
    prepared.set(cellKey(cell.unit, cell.epoch), {
      cell,
      crops: cell.images.map((bytes) => pool.add(bytes)),
      projections: cell.projections.map((bytes) => pool.add(bytes)),
      am: pool.add(cell.am),
    });
  }
  return prepared;
}

export const cellKey = (unit, epoch) => `${unit}/${epoch}`;

/** "epoch 5" (or "no epochs" when there is none). */
export function epochLabel(epoch) {
  return Number.isFinite(epoch) ? `epoch ${epoch}` : "no epochs";
}

/** `index` clamped to 0..count-1 (0 for an empty list). */
export function clampIndex(index, count) {
  const i = Math.trunc(Number(index));
  if (!Number.isFinite(i) || count <= 0) return 0;
  return Math.min(Math.max(i, 0), count - 1);
}

/** `[name, value]` pairs of the metrics logged at `epoch` (value null where missing). */
export function metricsAt(metrics, epoch) {
  const epochs = asArray(metrics?.epochs);
  const at = epochs.indexOf(epoch);
  if (at < 0) return [];
  return Object.entries(metrics?.series ?? {}).map(([name, values]) => [name, asNumber(asArray(values)[at])]);
}

/** "train_loss 1.59 · val_accuracy 0.242"; a missing value reads "–". */
export function metricsText(entries) {
  return entries.map(([name, value]) => `${name} ${formatValue(value)}`).join(" · ");
}

/** Accessible name of a grid cell. */
export function cellLabel(layer, cell) {
  const where = layer ? `${layer} unit ${cell.unit}` : `unit ${cell.unit}`;
  return `${where}, ${epochLabel(cell.epoch)}, activation ${formatValue(cell.values[0])}`;
}
