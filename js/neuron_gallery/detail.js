// The detail panel for the selected unit, drawn from the tile data alone;
// receptive-field context images are added when the `detail` trait has them.
import { h } from "../lib/dom.js";
import { formatValue } from "../lib/format.js";
import { gridColumns } from "../lib/layout.js";
import { cropCaption, flagBadges } from "./tiles.js";

function cropFigure(crop, i, label, projection) {
  return h("figure", { title: cropCaption(crop) }, [
    projection
      ? h("div", { className: "cnnvis-detail-pair" }, [
          h("img", { className: "cnnvis-detail-image", src: crop.url, alt: `${label}, image ${i + 1}` }),
          h("img", {
            className: "cnnvis-detail-projection",
            src: projection.url,
            alt: `${label}, projection of image ${i + 1}`,
            title: "DeconvNet projection",
          }),
        ])
      : h("img", { className: "cnnvis-detail-image", src: crop.url, alt: `${label}, image ${i + 1}` }),
    h("figcaption", {}, [
      h("span", { className: "cnnvis-detail-value", text: formatValue(crop.value) }),
      crop.index === undefined ? null : h("span", { className: "cnnvis-detail-index", text: ` #${crop.index}` }),
    ]),
  ]);
}

/**
 * Panel for one prepared tile. `contexts` is a list of object URLs (full
 * images with the receptive field drawn); `onClose` runs on the close button;
 * `legend` (text) says what the outlines on the context images mean.
 */
export function buildDetail({ tile, crops, projections = [], filter, am = [] }, contexts, onClose, legend = "") {
  const images = h(
    "div",
    { className: "cnnvis-detail-images" },
    crops.map((crop, i) => cropFigure(crop, i, tile.label, projections[i])),
  );
  const width = projections.length ? "calc(var(--cnnvis-tile) * 6 + 2px)" : "calc(var(--cnnvis-tile) * 3)";
  images.style.setProperty("grid-template-columns", `repeat(${gridColumns(crops.length)}, ${width})`);
  const filterFigure = filter
    ? h("figure", {}, [
        h("img", { className: "cnnvis-detail-filter", src: filter, alt: `${tile.label}, filter` }),
        h("figcaption", { text: "filter" }),
      ])
    : null;
  const amFigures = am.map((image, i) =>
    h("figure", {}, [
      h("img", { className: "cnnvis-detail-am", src: image.url, alt: `${tile.label}, activation maximization ${i + 1}` }),
      h("figcaption", { text: `AM ${formatValue(image.value)}` }),
    ]),
  );
  const contextBlock = contexts.length
    ? [
        h("div", { className: "cnnvis-detail-section", text: "Receptive fields" }),
        legend ? h("div", { className: "cnnvis-detail-legend", text: legend }) : null,
        h(
          "div",
          { className: "cnnvis-detail-contexts" },
          contexts.map((url, i) => {
            const index = tile.image_indices[i];
            return h("figure", {}, [
              h("img", { className: "cnnvis-detail-context", src: url, alt: `${tile.label}, receptive field ${i + 1}` }),
              index === undefined ? null : h("figcaption", { text: `#${index}` }),
            ]);
          }),
        ),
      ]
    : [];
  return h(
    "section",
    { className: "cnnvis-detail", role: "region", "aria-label": `Details: ${tile.label}`, "data-unit": tile.unit },
    [
      h("div", { className: "cnnvis-detail-head" }, [
        h("span", { className: "cnnvis-detail-title", text: tile.label }),
        ...flagBadges(tile.flags),
      ]),
      h("button", {
        type: "button",
        className: "cnnvis-detail-close",
        text: "×",
        title: "Close (Esc)",
        "aria-label": "Close details",
        onClick: onClose,
      }),
      h("div", { className: "cnnvis-detail-body" }, [images, filterFigure, ...amFigures]),
      ...contextBlock,
    ],
  );
}
