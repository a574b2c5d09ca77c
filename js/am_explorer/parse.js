// Parsing the explorer's text inputs and naming its downloads.

/**
 * Unit indices from text such as "0, 3,7" or "0 3 7".
 * Returns {units: number[]} or {error: string}; with `unitCount` > 0, every
 * unit must lie in 0..unitCount-1. Duplicates are kept once, in order.
 */
export function parseUnits(text, unitCount = 0) {
  const parts = String(text ?? "")
    .split(/[\s,;]+/)
    .filter((p) => p !== "");
  if (parts.length === 0) return { error: "enter at least one unit, e.g. 0, 3, 7" };
  const units = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part)) return { error: `"${part}" is not a unit number (use e.g. 0, 3, 7)` };
    const unit = Number(part);
    if (unitCount > 0 && unit >= unitCount) {
      return { error: `unit ${unit} is out of range: this layer has ${unitCount} units, numbered 0..${unitCount - 1}` };
    }
    if (!units.includes(unit)) units.push(unit);
  }
  return { units };
}

/** Units as the input shows them: "0, 3, 7". */
export function formatUnits(units) {
  return (Array.isArray(units) ? units : []).join(", ");
}

/**
 * A number from an input's text. `integer` requires a whole number; `min`
 * (inclusive) and `positive` (> 0) bound it. Returns {value} or {error}.
 */
export function parseNumber(text, label, { integer = false, min = -Infinity, positive = false } = {}) {
  const trimmed = String(text ?? "").trim();
  const value = Number(trimmed);
  if (trimmed === "" || !Number.isFinite(value)) return { error: `${label} must be a number` };
  if (integer && !Number.isInteger(value)) return { error: `${label} must be a whole number` };
  if (positive && !(value > 0)) return { error: `${label} must be greater than 0` };
  if (value < min) return { error: `${label} must be at least ${min}` };
  return { value };
}

/** A file-name-safe version of a layer name ("features.0" -> "features_0"). */
export function safeName(text) {
  return String(text ?? "").replace(/[^A-Za-z0-9_-]+/g, "_") || "output";
}

/**
 * Download names for a strip of images: "am_<layer>_<unit>.png", with the
 * image's index within its unit appended when a unit has several.
 */
export function saveNames(layer, units) {
  const list = Array.isArray(units) ? units : [];
  const total = new Map();
  for (const u of list) total.set(u, (total.get(u) || 0) + 1);
  const seen = new Map();
  return list.map((unit) => {
    const k = seen.get(unit) || 0;
    seen.set(unit, k + 1);
    const suffix = total.get(unit) > 1 ? `_${k}` : "";
    return `am_${safeName(layer)}_${unit}${suffix}.png`;
  });
}

/** "step 12 / 512". */
export function stepLabel(step, total) {
  const s = Math.max(0, Math.floor(Number(step) || 0));
  const t = Math.max(0, Math.floor(Number(total) || 0));
  return `step ${s} / ${t}`;
}
