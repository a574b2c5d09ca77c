// Decoding PNG bytes and drawing an image with its masks on a <canvas>.
import { toBytes } from "../lib/bytes.js";
import { compositeOverlay, scaleMask, unpackMask } from "./masks.js";

/** The PNG `data` (bytes or DataView) decoded to something drawImage takes; null when it cannot be. */
export async function decodeImage(data) {
  const bytes = toBytes(data);
  if (!bytes || bytes.byteLength === 0) return null;
  const blob = new Blob([bytes], { type: "image/png" });
  if (typeof createImageBitmap === "function") return createImageBitmap(blob);
  const url = URL.createObjectURL(blob);
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    return image;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Whole-number magnification that brings an image's longer side to about `side` pixels (at least 1). */
export function canvasScale(width, height, side) {
  return Math.max(1, Math.floor(side / Math.max(1, width, height)));
}

/**
 * Draws `image` magnified `scale` times on `canvas` (no smoothing) and the
 * masks over it. `masks`: `{unit, concept}` packed bits of `maskWidth` x
 * `maskHeight` (either may be null). Returns false where the canvas has no 2D
 * context. Sets `data-drawn` to the mask choice drawn.
 */
export function drawOverlay(canvas, image, { scale = 1, masks = {}, maskWidth, maskHeight, mode, opacity, unitColour, conceptColour }) {
  const width = Math.max(1, (image?.width || 1) * scale);
  const height = Math.max(1, (image?.height || 1) * scale);
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext?.("2d");
  if (!context || !image) return false;
  context.imageSmoothingEnabled = false;
  context.drawImage(image, 0, 0, width, height);
  const frame = context.getImageData(0, 0, width, height);
  const fit = (packed) =>
    packed && maskWidth > 0 && maskHeight > 0
      ? scaleMask(unpackMask(toBytes(packed), maskWidth, maskHeight), maskWidth, maskHeight, width, height)
      : null;
  compositeOverlay(frame.data, width, height, {
    unitMask: fit(masks.unit),
    conceptMask: fit(masks.concept),
    mode,
    opacity,
    unitColour,
    conceptColour,
  });
  context.putImageData(frame, 0, 0);
  canvas.dataset.drawn = mode;
  return true;
}
