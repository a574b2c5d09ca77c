// Inversion view: an anywidget front end showing, per image, the original and
// its reconstruction from each layer's features (Mahendran & Vedaldi 2015/2016:
// regularized pre-images; Dosovitskiy & Brox 2016: UpconvNet, also from
// binarized or dropped-out features), with toggles for the method and the
// perturbation. Every combination's images arrive at once, so the toggles
// work without a kernel; the kernel follows them to highlight its chart.
import { h } from "../lib/dom.js";
import { createUrlPool, releaseWhenSettled } from "../lib/bytes.js";
import { CSS } from "./style.js";
import {
  METHODS,
  PERTURBATIONS,
  describeChoice,
  findCombination,
  methodsPresent,
  normalizeCombinations,
  perturbationsFor,
  resolveChoice,
  visibleImages,
} from "./data.js";
import { linkLines } from "./line_link.js";
import { buildToggles } from "./toggles.js";
import { buildPicker, buildStrip } from "./strip.js";

// Images are magnified up to `scale` times, but not past this many CSS pixels unless they are larger already.
const MAX_SIDE = 256;

function render({ model, el }) {
  let originalsPool = createUrlPool();
  let stripPool = createUrlPool();
  let combinations = [];
  let originals = [];
  let picker = null;

  const title = h("div", { className: "cnnvis-title" });
  const methodToggles = buildToggles({
    label: "Method",
    className: "cnnvis-inv-method",
    dataKey: "method",
    options: METHODS,
  });
  const perturbationToggles = buildToggles({
    label: "Perturbation",
    className: "cnnvis-inv-perturbation",
    dataKey: "perturbation",
    options: PERTURBATIONS,
  });
  const caption = h("div", { className: "cnnvis-inv-caption", "aria-live": "polite" });
  const pickerSlot = h("div", { className: "cnnvis-inv-picker-slot" });
  const strips = h("div", { className: "cnnvis-inv-strips" });
  const root = h("div", { className: "cnnvis-inversion", "data-lm-suppress-shortcuts": "true" }, [
    h("style", { text: CSS }),
    title,
    h("div", { className: "cnnvis-inv-controls" }, [methodToggles.node, perturbationToggles.node]),
    caption,
    pickerSlot,
    h("div", { className: "cnnvis-inv-scroll" }, [strips]),
  ]);

  const layers = () => (model.get("layers") || []).map(String);
  const shown = () => resolveChoice(combinations, model.get("method"), model.get("perturbation"));

  function choose(method, perturbation) {
    const choice = resolveChoice(combinations, method, perturbation);
    if (!choice) return;
    model.set("method", choice.method);
    model.set("perturbation", choice.perturbation);
    model.save_changes();
  }

  function syncTitle() {
    const text = model.get("title") || "";
    title.textContent = text;
    title.hidden = !text;
  }

  function syncSize() {
    const scale = Math.max(1, Math.trunc(Number(model.get("scale")) || 1));
    const width = Math.max(1, Number(model.get("image_width")) || 64);
    const height = Math.max(1, Number(model.get("image_height")) || 64);
    const fit = Math.min(1, Math.max(MAX_SIDE, width, height) / (scale * Math.max(width, height)));
    root.style.setProperty("--cnnvis-inv-width", `${Math.round(width * scale * fit)}px`);
    root.style.setProperty("--cnnvis-inv-aspect", `${width} / ${height}`);
  }

  function syncData() {
    combinations = normalizeCombinations(model.get("combinations"));
    // the replaced pictures' URLs go once nothing loads from them (a revoked URL mid-load fails)
    const previous = { pool: originalsPool, nodes: [...pickerSlot.children, ...strips.children] };
    originalsPool = createUrlPool();
    originals = (model.get("originals") || []).map((bytes) => originalsPool.add(bytes));
    const many = visibleImages(originals.length, model.get("max_strips"), 0).length < originals.length;
    picker = many ? buildPicker({ urls: originals }) : null;
    pickerSlot.replaceChildren(...(picker ? [picker.node] : []));
    syncShown();
    releaseWhenSettled(previous.nodes, previous.pool);
  }

  function pickImage(index) {
    model.set("selected_image", index);
    model.save_changes();
  }

  function syncShown() {
    const choice = shown();
    methodToggles.update(choice?.method, methodsPresent(combinations));
    perturbationToggles.update(choice?.perturbation, choice ? perturbationsFor(combinations, choice.method) : new Set());
    caption.textContent = describeChoice(choice);
    syncStrips(choice);
  }

  function syncStrips(choice = shown()) {
    const previous = { pool: stripPool, nodes: [...strips.children] };
    stripPool = createUrlPool();
    const combination = choice ? findCombination(combinations, choice.method, choice.perturbation) : null;
    const names = layers();
    const visible = visibleImages(originals.length, model.get("max_strips"), model.get("selected_image"));
    picker?.update(visible[0]);
    if (!combination) {
      strips.replaceChildren();
      releaseWhenSettled(previous.nodes, previous.pool);
      return;
    }
    strips.replaceChildren(
      ...visible.map((i) =>
        buildStrip({
          index: i,
          layers: names,
          original: originals[i] ?? null,
          reconstructions: names.map((_, j) => stripPool.add(combination.images[i * names.length + j])),
          pixelErrors: combination.pixel_errors[i] ?? [],
          featureErrors: combination.feature_errors[i] ?? [],
        }),
      ),
    );
    releaseWhenSettled(previous.nodes, previous.pool);
  }

  // One listener for every button: toggles carry data-method / data-perturbation, picker buttons data-image.
  function onClick(event) {
    const button = event.target.closest?.("button");
    if (!button || button.disabled || !root.contains(button)) return;
    const { method, perturbation, image } = button.dataset;
    if (method !== undefined) choose(method, model.get("perturbation"));
    else if (perturbation !== undefined) choose(model.get("method"), perturbation);
    else if (image !== undefined) pickImage(Number(image));
  }
  root.addEventListener("click", onClick);

  const handlers = {
    title: syncTitle,
    scale: syncSize,
    image_width: syncSize,
    image_height: syncSize,
    layers: syncData,
    originals: syncData,
    combinations: syncData,
    max_strips: syncData,
    method: syncShown,
    perturbation: syncShown,
    selected_image: () => syncStrips(),
  };
  const listeners = Object.entries(handlers).map(([name, callback]) => {
    const wrapped = () => callback();
    model.on(`change:${name}`, wrapped);
    return [`change:${name}`, wrapped];
  });

  syncTitle();
  syncSize();
  syncData();
  el.append(root);

  return () => {
    for (const [event, callback] of listeners) model.off(event, callback);
    root.removeEventListener("click", onClick);
    stripPool.revokeAll();
    originalsPool.revokeAll();
    root.remove();
  };
}

export default { initialize: ({ model }) => linkLines(model), render };
