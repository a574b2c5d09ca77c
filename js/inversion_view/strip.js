// One image's strip: the original, then its reconstruction from each layer,
// each labelled with the layer and the reconstruction's pixel error.
import { h } from "../lib/dom.js";
import { formatValue } from "../lib/format.js";
import { errorText } from "./data.js";

function figure({ url, alt, layer, kind, caption, detail, title }) {
  const picture = url
    ? h("img", { className: "cnnvis-inv-image", src: url, alt, draggable: "false", "data-layer": layer, "data-kind": kind })
    : h("span", { className: "cnnvis-inv-image cnnvis-inv-missing", title: "no image", "data-layer": layer, "data-kind": kind });
  if (title) picture.title = title;
  return h("figure", { className: `cnnvis-inv-cell cnnvis-inv-${kind}`, "data-layer": layer }, [
    picture,
    h("figcaption", {}, [
      h("span", { className: "cnnvis-inv-layer", text: caption }),
      h("span", { className: "cnnvis-inv-error", text: detail }),
    ]),
  ]);
}

/**
 * The strip of image `index`: `original` and `reconstructions` are object
 * URLs (null where missing), `pixelErrors` and `featureErrors` one value per layer.
 */
export function buildStrip({ index, layers, original, reconstructions, pixelErrors, featureErrors }) {
  const name = `image ${index + 1}`;
  const cells = [
    figure({ url: original, alt: `${name}, original`, layer: "", kind: "original", caption: "original", detail: name }),
    ...layers.map((layer, j) =>
      figure({
        url: reconstructions[j] ?? null,
        alt: `${name}, reconstructed from ${layer}, ${errorText(pixelErrors[j])}`,
        layer,
        kind: "reconstruction",
        caption: layer,
        detail: errorText(pixelErrors[j]),
        title: `${layer}: ${errorText(pixelErrors[j])}, feature error ${formatValue(featureErrors[j] ?? null)}`,
      }),
    ),
  ];
  return h("section", { className: "cnnvis-inv-strip", "data-image": index, role: "group", "aria-label": name }, cells);
}

/** Buttons showing each original, to pick the strip shown (each carries `data-image`). */
export function buildPicker({ urls }) {
  const buttons = urls.map((url, i) =>
    h(
      "button",
      {
        type: "button",
        className: "cnnvis-inv-pick",
        "data-lm-suppress-shortcuts": "true",
        "data-image": i,
        "aria-pressed": "false",
        "aria-label": `Show image ${i + 1}`,
        title: `image ${i + 1}`,
      },
      url ? [h("img", { className: "cnnvis-inv-thumb", src: url, alt: "", draggable: "false" })] : [String(i + 1)],
    ),
  );
  const node = h("div", { className: "cnnvis-inv-picker", role: "group", "aria-label": "Image" }, buttons);
  return {
    node,
    buttons,
    update(selected) {
      buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === selected)));
    },
  };
}
