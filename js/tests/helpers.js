// Shared test fixtures: a fake anywidget model, PNG bytes and object-URL spies.
import { vi } from "vitest";

// A valid 1x1 PNG.
export const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

export function pngBytes() {
  return Uint8Array.from(atob(PNG_BASE64), (c) => c.charCodeAt(0));
}

/** PNG bytes as a DataView, the way ipywidgets delivers buffers. */
export function pngView() {
  const bytes = pngBytes();
  return new DataView(bytes.buffer);
}

/** A model with anywidget's get/set/on/off/save_changes; records saves. */
export function fakeModel(initial) {
  const state = { ...initial };
  const listeners = new Map();
  const model = {
    saves: [],
    sent: [],
    get: (name) => state[name],
    set(name, value) {
      if (Object.is(state[name], value)) return;
      state[name] = value;
      for (const callback of [...(listeners.get(`change:${name}`) || [])]) callback(model, value);
    },
    on(event, callback) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(callback);
    },
    off(event, callback) {
      listeners.get(event)?.delete(callback);
    },
    save_changes() {
      model.saves.push({ ...state });
    },
    send(content) {
      model.sent.push(content);
    },
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
  };
  return model;
}

/** Finish loading `images` (jsdom never loads an image), then let pending promises run. */
export async function finishLoading(images) {
  for (const img of images) img.dispatchEvent(new Event("load"));
  await new Promise((resolve) => setTimeout(resolve, 0));
}

/** Install URL.createObjectURL / revokeObjectURL spies (jsdom has neither). */
export function stubObjectUrls() {
  let next = 0;
  const live = new Set();
  const create = vi.fn(() => {
    const url = `blob:test/${next++}`;
    live.add(url);
    return url;
  });
  const revoke = vi.fn((url) => live.delete(url));
  URL.createObjectURL = create;
  URL.revokeObjectURL = revoke;
  return { create, revoke, live };
}

/** A tile object as the kernel sends it. */
export function makeTile(unit, { count = 9, filter = true, label, flags = [], projections = false } = {}) {
  return {
    unit,
    label: label ?? `conv1 #${unit}`,
    values: Array.from({ length: count }, (_, i) => 1 / (i + 1) + unit),
    image_indices: Array.from({ length: count }, (_, i) => 100 * unit + i),
    images: Array.from({ length: count }, () => pngView()),
    filter: filter ? pngView() : null,
    flags,
    ...(projections ? { projections: Array.from({ length: count }, () => pngView()) } : {}),
  };
}
