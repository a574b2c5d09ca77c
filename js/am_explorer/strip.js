// The explorer's image strip: one item per optimized image, with a label and
// a "Save PNG" link that downloads the image's bytes (no kernel round-trip).
import { h } from "../lib/dom.js";

/** An empty item: image, label and save link, filled in by `fillItem`. */
export function buildItem() {
  const img = h("img", { className: "cnnvis-am-image", alt: "" });
  const label = h("span", { className: "cnnvis-am-label" });
  const save = h("a", { className: "cnnvis-am-save", text: "Save PNG" });
  const node = h("figure", { className: "cnnvis-am-item", style: { margin: "0" } }, [
    img,
    h("figcaption", { className: "cnnvis-am-caption" }, [label, save]),
  ]);
  return { node, img, label, save };
}

/** Point `item` at `url` (an object URL, or null when the bytes were empty). */
export function fillItem(item, { url, label, name }) {
  item.label.textContent = label;
  item.label.title = label;
  item.img.alt = `activation maximization, ${label}`;
  item.save.setAttribute("download", name);
  item.save.title = `Download ${name}`;
  if (url) {
    item.img.src = url;
    item.save.href = url;
    item.save.removeAttribute("aria-disabled");
  } else {
    item.img.removeAttribute("src");
    item.save.removeAttribute("href");
    item.save.setAttribute("aria-disabled", "true");
  }
}
