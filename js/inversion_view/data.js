// The inversion view's data: the (method, perturbation) combinations from the
// `combinations` trait, which of them exist, and the text that labels them.
import { formatValue } from "../lib/format.js";

/** Toggle options in display order: [value, label]. */
export const METHODS = [
  ["regularized", "regularized"],
  ["upconv", "UpconvNet"],
];
export const PERTURBATIONS = [
  ["none", "none"],
  ["binarize", "binarize"],
  ["dropout", "dropout"],
];

const METHOD_TEXT = {
  regularized: "regularized optimization (Mahendran & Vedaldi)",
  upconv: "UpconvNet decoders (Dosovitskiy & Brox)",
};
const FEATURE_TEXT = {
  none: "each layer's features",
  binarize: "each layer's binarized features",
  dropout: "each layer's features with half of them dropped",
};

const asArray = (value) => (Array.isArray(value) ? value : []);
const asNumber = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/** A combination from the trait with every field present and typed. */
export function normalizeCombination(raw) {
  return {
    method: String(raw?.method ?? ""),
    perturbation: String(raw?.perturbation ?? "none"),
    images: asArray(raw?.images),
    pixel_errors: asArray(raw?.pixel_errors).map((row) => asArray(row).map(asNumber)),
    feature_errors: asArray(raw?.feature_errors).map((row) => asArray(row).map(asNumber)),
  };
}

export function normalizeCombinations(list) {
  return asArray(list).map(normalizeCombination);
}

export function findCombination(combinations, method, perturbation) {
  return combinations.find((c) => c.method === method && c.perturbation === perturbation) ?? null;
}

/** The methods that have at least one combination. */
export function methodsPresent(combinations) {
  return new Set(combinations.map((c) => c.method));
}

/** The perturbations `method` has a combination for. */
export function perturbationsFor(combinations, method) {
  return new Set(combinations.filter((c) => c.method === method).map((c) => c.perturbation));
}

/**
 * The combination to show for a wish of `method` and `perturbation`: that one
 * when it exists; else `method` with no perturbation, or its first one in
 * toggle order; else the first combination. Null when there is none.
 */
export function resolveChoice(combinations, method, perturbation) {
  if (findCombination(combinations, method, perturbation)) return { method, perturbation };
  const available = perturbationsFor(combinations, method);
  const order = PERTURBATIONS.map(([value]) => value);
  const fallback = order.find((p) => available.has(p)) ?? [...available][0];
  if (fallback !== undefined) return { method, perturbation: fallback };
  const first = combinations[0];
  return first ? { method: first.method, perturbation: first.perturbation } : null;
}

/** "pixel error 0.423" ("–" when missing). */
export function errorText(value) {
  return `pixel error ${formatValue(value)}`;
}

/** One line on what the strip shows. */
export function describeChoice(choice) {
  if (!choice) return "No reconstructions.";
  const how = METHOD_TEXT[choice.method] ?? choice.method;
  const from = FEATURE_TEXT[choice.perturbation] ?? `${choice.perturbation} features`;
  return `Reconstructed by ${how} from ${from}. Pixel error: the share of the original's variance missed (0 is exact).`;
}

/** The images to draw strips for: all when few, else only the selected one. */
export function visibleImages(count, maxStrips, selected) {
  if (count <= Math.max(1, maxStrips)) return Array.from({ length: count }, (_, i) => i);
  const i = Math.trunc(Number(selected));
  return [Number.isFinite(i) ? Math.min(Math.max(i, 0), count - 1) : 0];
}
