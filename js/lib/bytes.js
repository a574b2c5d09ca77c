// Binary trait values and the object URLs made from them.

/**
 * A Uint8Array view of `data`, which may be a DataView (ipywidgets buffers),
 * an ArrayBuffer, or any typed array. Returns null for anything else.
 */
export function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return null;
}

/**
 * Keeps track of the object URLs it creates so they can all be revoked
 * at once (when the data they show is replaced, and on cleanup).
 */
export function createUrlPool() {
  const urls = [];
  return {
    /** Object URL for the bytes in `data`, or null when there are none. */
    add(data, type = "image/png") {
      const bytes = toBytes(data);
      if (!bytes || bytes.byteLength === 0) return null;
      const url = URL.createObjectURL(new Blob([bytes], { type }));
      urls.push(url);
      return url;
    },
    revokeAll() {
      for (const url of urls.splice(0)) URL.revokeObjectURL(url);
    },
    get size() {
      return urls.length;
    },
  };
}

/**
 * Revoke `pool`'s URLs once no image under `root` still loads from them: an
 * image that is mid-load when its URL is revoked fails (ERR_FILE_NOT_FOUND),
 * even after it left the page. Call it with the replaced DOM (a node or a list
 * of nodes) and its pool.
 */
export function releaseWhenSettled(roots, pool) {
  const images = [roots].flat().flatMap((root) => [...(root?.querySelectorAll?.("img") ?? [])]);
  const pending = images.filter((img) => img.src && !img.complete);
  if (!pending.length) {
    pool.revokeAll();
    return Promise.resolve();
  }
  const settled = pending.map((img) => new Promise((resolve) => {
    img.addEventListener("load", resolve, { once: true });
    img.addEventListener("error", resolve, { once: true });
  }));
  return Promise.all(settled).then(() => pool.revokeAll());
}
