// Binary buffers in saved widget state.

/** Bytes of a base64 string as a DataView (the type ipywidgets hands to models). */
export function decodeBase64(text) {
  const binary = atob(String(text).replace(/\s+/g, ""));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return new DataView(bytes.buffer);
}

function bufferValue({ data, encoding }) {
  if (data instanceof DataView) return data;
  if (ArrayBuffer.isView(data)) return new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new DataView(data);
  if (encoding === "hex") {
    const pairs = String(data).match(/[0-9a-f]{2}/gi) || [];
    return new DataView(Uint8Array.from(pairs, (pair) => parseInt(pair, 16)).buffer);
  }
  return decodeBase64(data);
}

/**
 * Put each buffer's bytes, as a DataView, into `state` at its `path`
 * (keys and indices, e.g. ["tiles", 0, "images", 2]). Missing containers
 * on the way are created. Mutates and returns `state`.
 */
export function placeBuffers(state, buffers = []) {
  for (const buffer of buffers) {
    const path = buffer.path || [];
    if (path.length === 0) continue;
    let node = state;
    for (let i = 0; i < path.length - 1; i += 1) {
      if (node[path[i]] === null || typeof node[path[i]] !== "object") {
        node[path[i]] = typeof path[i + 1] === "number" ? [] : {};
      }
      node = node[path[i]];
    }
    node[path[path.length - 1]] = bufferValue(buffer);
  }
  return state;
}
