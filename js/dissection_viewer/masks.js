// Masks over images, computed on plain RGBA arrays so they can be tested
// without a canvas. The same picture as the engine's overlay.py: a mask is
// tinted (colour * opacity + pixel * (1 - opacity)) and outlined in full colour;
// masks are resized to the picture by nearest neighbour (pixel centres, as PIL).

// Magenta unit mask, cyan concept mask, as cnnvis_widgets/dissection/overlay.py.
export const UNIT_RGB = [255, 43, 214];
export const CONCEPT_RGB = [0, 194, 255];

/** "#ff2bd6" -> [255, 43, 214]; `fallback` for anything else. */
export function parseColour(text, fallback) {
  const match = /^#?([0-9a-f]{6})$/i.exec(String(text ?? "").trim());
  if (!match) return fallback;
  const value = parseInt(match[1], 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

/** Packed bits (row-major, most significant bit first, as numpy.packbits) -> Uint8Array of 0/1. */
export function unpackMask(bytes, width, height) {
  const n = width * height;
  const out = new Uint8Array(n);
  if (!bytes) return out;
  for (let i = 0; i < n; i++) {
    const byte = bytes[i >> 3];
    if (byte !== undefined) out[i] = (byte >> (7 - (i & 7))) & 1;
  }
  return out;
}

/** A mask of maskWidth x maskHeight resized to width x height by nearest neighbour (pixel centres). */
export function scaleMask(mask, maskWidth, maskHeight, width, height) {
  if (maskWidth === width && maskHeight === height) return mask;
  const out = new Uint8Array(width * height);
  const columns = new Int32Array(width);
  for (let x = 0; x < width; x++) columns[x] = Math.min(maskWidth - 1, Math.floor(((x + 0.5) * maskWidth) / width));
  for (let y = 0; y < height; y++) {
    const row = Math.min(maskHeight - 1, Math.floor(((y + 0.5) * maskHeight) / height)) * maskWidth;
    for (let x = 0; x < width; x++) out[y * width + x] = mask[row + columns[x]];
  }
  return out;
}

/** The mask's boundary: pixels on whose 4-neighbours (inside the picture) include one off. */
export function maskEdge(mask, width, height) {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!mask[i]) continue;
      const inner =
        (y === 0 || mask[i - width]) &&
        (y === height - 1 || mask[i + width]) &&
        (x === 0 || mask[i - 1]) &&
        (x === width - 1 || mask[i + 1]);
      if (!inner) out[i] = 1;
    }
  }
  return out;
}

/**
 * What each mask choice draws: "unit" tints and outlines the unit's mask,
 * "concept" the concept's; "both" tints and outlines the unit's and outlines
 * the concept's (the engine's report picture).
 */
export function overlayPlan(mode) {
  if (mode === "unit") return { tintUnit: true, edgeUnit: true, tintConcept: false, edgeConcept: false };
  if (mode === "concept") return { tintUnit: false, edgeUnit: false, tintConcept: true, edgeConcept: true };
  return { tintUnit: true, edgeUnit: true, tintConcept: false, edgeConcept: true };
}

function tint(pixels, mask, colour, opacity) {
  const keep = 1 - opacity;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const p = i * 4;
    for (let c = 0; c < 3; c++) pixels[p + c] = Math.round(pixels[p + c] * keep + colour[c] * opacity);
  }
}

function paint(pixels, mask, colour) {
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const p = i * 4;
    pixels[p] = colour[0];
    pixels[p + 1] = colour[1];
    pixels[p + 2] = colour[2];
  }
}

/**
 * Draws the masks into `pixels` (RGBA, width x height, changed in place).
 * `unitMask` and `conceptMask` are 0/1 arrays of the same size (or null).
 */
export function compositeOverlay(pixels, width, height, options = {}) {
  const { unitMask = null, conceptMask = null, mode = "both", opacity = 0.45 } = options;
  const unitColour = options.unitColour ?? UNIT_RGB;
  const conceptColour = options.conceptColour ?? CONCEPT_RGB;
  const alpha = Math.min(1, Math.max(0, Number(opacity) || 0));
  const plan = overlayPlan(mode);
  if (unitMask) {
    if (plan.tintUnit) tint(pixels, unitMask, unitColour, alpha);
    if (plan.edgeUnit) paint(pixels, maskEdge(unitMask, width, height), unitColour);
  }
  if (conceptMask) {
    if (plan.tintConcept) tint(pixels, conceptMask, conceptColour, alpha);
    if (plan.edgeConcept) paint(pixels, maskEdge(conceptMask, width, height), conceptColour);
  }
  return pixels;
}

/** Fraction of the mask's pixels that are on (0 for an empty mask). */
export function maskCoverage(mask) {
  if (!mask || mask.length === 0) return 0;
  let on = 0;
  for (let i = 0; i < mask.length; i++) on += mask[i] ? 1 : 0;
  return on / mask.length;
}
