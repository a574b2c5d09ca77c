// Neuron gallery: an anywidget front end showing a page of a CNN layer's
// units, each with its top-activating image crops, plus a detail panel.
import { h } from "../lib/dom.js";
import { createUrlPool, releaseWhenSettled } from "../lib/bytes.js";
import { clampPage, pageCount, pageLabel, unitRange } from "../lib/paging.js";
import { CSS } from "./style.js";
import { buildTile, prepareTiles } from "./tiles.js";
import { buildDetail } from "./detail.js";

/** How long a page or layer request may go unanswered before we assume no kernel. */
export const KERNEL_TIMEOUT_MS = 4000;

export const NO_KERNEL_NOTES = {
  page: "Paging needs a running kernel.",
  layer: "Switching layers needs a running kernel.",
};

// Traits only the kernel changes; a change to any of them answers a pending request.
const KERNEL_TRAITS = ["tiles", "unit_count", "status", "progress", "computing", "detail", "layers"];

function render({ model, el }) {
  let tilePool = createUrlPool();
  let contextPool = createUrlPool();
  let views = [];
  // What the grid actually shows; the page label and layer picker fall back
  // to it when a request goes unanswered.
  let shown = { page: model.get("page"), layer: model.get("layer") };
  let stale = false;
  let pending = null;
  let note = "";
  let panel = null;
  let focusPanel = false;

  const title = h("div", { className: "cnnvis-title" });
  const layerSelect = h("select", { className: "cnnvis-layer", "aria-label": "Layer" });
  const prev = h("button", { type: "button", className: "cnnvis-prev", text: "‹ prev", "aria-label": "Previous page" });
  const pageText = h("span", { className: "cnnvis-page", "aria-live": "polite" });
  const next = h("button", { type: "button", className: "cnnvis-next", text: "next ›", "aria-label": "Next page" });
  const progress = h("progress", { className: "cnnvis-progress", max: "1", hidden: true });
  const status = h("span", { className: "cnnvis-status", role: "status" });
  // Shown while the kernel computes a layer in the background; stops it after the current batch.
  const cancel = h("button", { type: "button", className: "cnnvis-cancel", text: "Cancel", hidden: true });
  const grid = h("div", { className: "cnnvis-grid" });
  const root = h("div", { className: "cnnvis-gallery", "data-lm-suppress-shortcuts": "true" }, [
    h("style", { text: CSS }),
    title,
    h("div", { className: "cnnvis-toolbar" }, [layerSelect, prev, pageText, next]),
    h("div", { className: "cnnvis-statusbar" }, [progress, status, cancel]),
    grid,
  ]);

  const shownPage = () => (stale ? shown.page : model.get("page"));
  const shownLayer = () => (stale ? shown.layer : model.get("layer"));
  const totalPages = () => pageCount(model.get("unit_count"), model.get("page_size"));

  function syncTitle() {
    const text = model.get("title") || "";
    title.textContent = text;
    title.hidden = !text;
  }

  function syncLayers() {
    const layers = (model.get("layers") || []).map(String);
    const current = shownLayer();
    if (current && !layers.includes(current)) layers.unshift(current);
    layerSelect.replaceChildren(...layers.map((name) => h("option", { value: name, text: name })));
    layerSelect.value = current ?? "";
    layerSelect.hidden = layers.length === 0;
  }

  function syncPager() {
    const total = totalPages();
    const page = clampPage(shownPage(), total);
    pageText.textContent = pageLabel(page, total);
    const range = unitRange(page, model.get("page_size"), model.get("unit_count"));
    pageText.title = range ? `units ${range[0]}–${range[1]} of ${model.get("unit_count")}` : "";
    prev.disabled = page <= 0;
    next.disabled = page >= total - 1;
  }

  function syncStatus() {
    const value = model.get("progress");
    const busy = typeof value === "number" && value >= 0 && value <= 1;
    progress.hidden = !busy;
    if (busy) progress.value = value;
    status.textContent = note || model.get("status") || "";
    cancel.hidden = !model.get("computing");
  }

  function syncControls() {
    syncPager();
    syncLayers();
    syncStatus();
  }

  function syncTileSize() {
    const size = Math.max(1, Number(model.get("tile_size")) || 40);
    root.style.setProperty("--cnnvis-tile", `${size}px`);
  }

  function syncSelection() {
    const unit = model.get("selected_unit");
    for (const tile of grid.querySelectorAll(".cnnvis-tile")) {
      const selected = Number(tile.dataset.unit) === unit;
      tile.classList.toggle("cnnvis-selected", selected);
      tile.setAttribute("aria-pressed", String(selected));
    }
  }

  function syncDetail() {
    // the old panel's URLs go once its images have loaded (a revoked URL mid-load fails)
    releaseWhenSettled(panel, contextPool);
    contextPool = createUrlPool();
    panel?.remove();
    panel = null;
    const unit = model.get("selected_unit");
    const view = unit >= 0 ? views.find((v) => v.tile.unit === unit) : undefined;
    if (!view) return;
    const detail = model.get("detail");
    const contexts =
      detail && Number(detail.unit) === unit && Array.isArray(detail.context)
        ? detail.context.map((bytes) => contextPool.add(bytes)).filter(Boolean)
        : [];
    const legend = contexts.length && typeof detail.legend === "string" ? detail.legend : "";
    panel = buildDetail(view, contexts, close, legend);
    grid.before(panel);
    if (focusPanel) panel.querySelector(".cnnvis-detail-close").focus();
    focusPanel = false;
  }

  function syncTiles() {
    releaseWhenSettled([...grid.children, panel], tilePool); // the tiles being replaced, and the detail
    tilePool = createUrlPool();
    views = prepareTiles(model.get("tiles"), tilePool);
    grid.replaceChildren(
      ...(views.length
        ? views.map((view) => buildTile(view, select))
        : [h("div", { className: "cnnvis-empty", text: "No units to show." })]),
    );
    shown = { page: model.get("page"), layer: model.get("layer") };
    syncSelection();
    syncDetail();
  }

  function select(unit) {
    focusPanel = true;
    model.set("selected_unit", unit);
    model.save_changes();
  }

  function close() {
    const unit = model.get("selected_unit");
    model.set("selected_unit", -1);
    model.save_changes();
    grid.querySelector(`.cnnvis-tile[data-unit="${unit}"]`)?.focus();
  }

  // Ask the kernel for another page or layer. With no answer in time
  // (e.g. a static HTML export), say so and show what is really displayed.
  function request(kind, name, value) {
    clearTimeout(pending);
    pending = null;
    stale = false;
    note = "";
    model.set(name, value);
    model.save_changes();
    if (value !== shown[kind]) pending = setTimeout(() => timeOut(kind), KERNEL_TIMEOUT_MS);
    syncControls();
  }

  function timeOut(kind) {
    pending = null;
    stale = true;
    note = NO_KERNEL_NOTES[kind];
    syncControls();
  }

  function answered() {
    if (pending === null && !stale && !note) return;
    clearTimeout(pending);
    pending = null;
    stale = false;
    note = "";
    syncControls();
  }

  prev.addEventListener("click", () => request("page", "page", clampPage(shownPage() - 1, totalPages())));
  next.addEventListener("click", () => request("page", "page", clampPage(shownPage() + 1, totalPages())));
  layerSelect.addEventListener("change", () => request("layer", "layer", layerSelect.value));
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    model.send({ type: "cancel" });
  });
  root.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !panel) return;
    event.preventDefault();
    event.stopPropagation();
    close();
  });

  const handlers = {
    title: syncTitle,
    layers: syncLayers,
    layer: () => {
      stale = false;
      syncLayers();
    },
    page: () => {
      stale = false;
      syncPager();
    },
    unit_count: syncPager,
    page_size: syncPager,
    tiles: syncTiles,
    tile_size: syncTileSize,
    status: syncStatus,
    progress: syncStatus,
    computing: () => {
      cancel.disabled = false;
      syncStatus();
    },
    selected_unit: () => {
      syncSelection();
      syncDetail();
    },
    detail: syncDetail,
  };
  const listeners = Object.entries(handlers).map(([name, sync]) => {
    const callback = () => {
      if (KERNEL_TRAITS.includes(name)) answered();
      sync();
    };
    model.on(`change:${name}`, callback);
    return [`change:${name}`, callback];
  });

  syncTitle();
  syncControls();
  syncTileSize();
  syncTiles();
  el.append(root);

  return () => {
    for (const [event, callback] of listeners) model.off(event, callback);
    clearTimeout(pending);
    tilePool.revokeAll();
    contextPool.revokeAll();
    root.remove();
  };
}

export default { render };
