// Training timeline: an anywidget front end showing chosen units' top images
// (and their DeconvNet projections) at every recorded epoch, units as rows
// and epochs as columns, with a scrubber, a play button and a detail panel
// (Zeiler & Fergus 2014, Fig. 4). Play advances one epoch per `interval_ms`
// and stops at the last epoch; pressing Play there starts from the first.
import { h } from "../lib/dom.js";
import { createUrlPool, releaseWhenSettled } from "../lib/bytes.js";
import { linkMarker } from "./marker_link.js";
import { CSS } from "./style.js";
import { cellKey, clampIndex, epochLabel, metricsAt, metricsText, prepareCells } from "./data.js";
import { buildGrid } from "./grid.js";
import { buildDetail } from "./detail.js";
import { createPlayer } from "./player.js";

function render({ model, el }) {
  let pool = createUrlPool();
  let prepared = new Map();
  let grid = null;
  let panel = null;
  const cleanups = [];

  const listen = (node, event, callback) => {
    node.addEventListener(event, callback);
    cleanups.push(() => node.removeEventListener(event, callback));
  };

  const title = h("div", { className: "cnnvis-title" });
  // JupyterLab's notebook shortcuts match any focused element, so each control opts out itself
  // (arrow keys must move the scrubber; Enter and Space must press the buttons).
  const own = { "data-lm-suppress-shortcuts": "true" };
  const playButton = h("button", { type: "button", className: "cnnvis-tl-play", "aria-pressed": "false", ...own });
  const scrubber = h("input", { type: "range", className: "cnnvis-tl-scrubber", min: "0", step: "1", "aria-label": "Epoch", ...own });
  const epochText = h("span", { className: "cnnvis-tl-epoch", "aria-live": "polite" });
  const metricsLine = h("span", { className: "cnnvis-tl-metrics" });
  const legend = h("div", { className: "cnnvis-tl-legend" });
  const status = h("div", { className: "cnnvis-tl-status", role: "status" });
  const scroll = h("div", { className: "cnnvis-tl-scroll" });
  const detailSlot = h("div", { className: "cnnvis-tl-detail-slot" });
  const root = h("div", { className: "cnnvis-timeline", "data-lm-suppress-shortcuts": "true" }, [
    h("style", { text: CSS }),
    title,
    h("div", { className: "cnnvis-tl-controls" }, [playButton, scrubber, epochText, metricsLine]),
    legend,
    status,
    scroll,
    detailSlot,
  ]);

  const epochs = () => (model.get("epochs") || []).map(Number);
  const index = () => clampIndex(model.get("epoch_index"), epochs().length);
  const currentEpoch = () => epochs()[index()];

  function setIndex(i) {
    model.set("epoch_index", clampIndex(i, epochs().length));
    model.save_changes();
  }

  function setPlaying(value) {
    model.set("playing", value);
    model.save_changes();
  }

  const player = createPlayer({
    getIndex: index,
    setIndex,
    count: () => epochs().length,
    interval: () => model.get("interval_ms"),
    onEnd: () => setPlaying(false),
  });

  function syncTitle() {
    const text = model.get("title") || "";
    title.textContent = text;
    title.hidden = !text;
  }

  function syncSize() {
    const side = Math.max(8, Number(model.get("tile_size")) || 48);
    root.style.setProperty("--cnnvis-tl-tile", `${side}px`);
  }

  function syncStatus() {
    const text = model.get("status") || "";
    status.textContent = text;
    status.hidden = !text;
  }

  function syncLegend() {
    const any = [...prepared.values()];
    const parts = ["top image", any.some((e) => e.projections.length) ? "DeconvNet projection" : null,
      any.some((e) => e.am) ? "activation maximization" : null].filter(Boolean);
    legend.textContent = any.length ? `Each cell: ${parts.join(" · ")}. Click a cell for details.` : "";
    legend.hidden = !any.length;
  }

  function syncGrid() {
    const previous = { pool, nodes: [grid?.node, panel] };
    pool = createUrlPool();
    prepared = prepareCells(model.get("cells"), pool);
    const units = (model.get("units") || []).map(Number);
    grid = buildGrid({
      layer: model.get("layer") || "",
      units,
      epochs: epochs(),
      prepared,
      onEpoch: (column) => setIndex(column),
      onCell: (unit, column) => {
        model.set("selected_unit", unit);
        setIndex(column);
        model.save_changes();
      },
    });
    scroll.replaceChildren(grid.node);
    const count = epochs().length;
    scrubber.max = String(Math.max(count - 1, 0));
    scrubber.disabled = count < 2;
    playButton.disabled = count < 2;
    syncLegend();
    syncCurrent();
    // the old grid and detail are gone from the page; their URLs go once their images have loaded
    releaseWhenSettled(previous.nodes, previous.pool);
  }

  function syncCurrent() {
    const list = epochs();
    const i = index();
    const epoch = list[i];
    scrubber.value = String(i);
    scrubber.setAttribute("aria-valuetext", epochLabel(epoch));
    epochText.textContent = list.length ? epochLabel(epoch) : "";
    metricsLine.textContent = metricsText(metricsAt(model.get("metrics"), epoch));
    const selected = Number(model.get("selected_unit"));
    if (grid) {
      grid.heads.forEach((head, column) => {
        head.classList.toggle("cnnvis-tl-current", column === i);
        head.setAttribute("aria-pressed", String(column === i));
      });
      for (const row of grid.cells) {
        row.forEach((cell, column) => {
          cell.classList.toggle("cnnvis-tl-current", column === i);
          cell.classList.toggle("cnnvis-tl-selected", column === i && Number(cell.dataset.unit) === selected);
        });
      }
    }
    syncDetail();
  }

  function syncDetail() {
    const unit = Number(model.get("selected_unit"));
    const entry = prepared.get(cellKey(unit, currentEpoch()));
    const hadFocus = panel !== null && panel.contains(document.activeElement);
    panel = null;
    if (unit < 0 || !entry) {
      detailSlot.replaceChildren();
      return;
    }
    panel = buildDetail({
      layer: model.get("layer") || "",
      entry,
      metrics: metricsAt(model.get("metrics"), currentEpoch()),
      onClose: closeDetail,
    });
    detailSlot.replaceChildren(panel);
    if (hadFocus) panel.querySelector(".cnnvis-tl-detail-close")?.focus();
  }

  function closeDetail() {
    model.set("selected_unit", -1);
    model.save_changes();
  }

  function syncPlaying() {
    const playing = !!model.get("playing");
    playButton.textContent = playing ? "❚❚ Pause" : "▶ Play";
    playButton.setAttribute("aria-pressed", String(playing));
    playButton.title = playing ? "Pause" : "Step through the epochs";
    if (playing && !player.running) player.start();
    else if (!playing) player.stop();
  }

  listen(playButton, "click", () => setPlaying(!model.get("playing")));
  listen(scrubber, "input", () => setIndex(Number(scrubber.value)));
  listen(root, "keydown", (event) => {
    if (event.key === "Escape" && Number(model.get("selected_unit")) >= 0) {
      event.preventDefault();
      closeDetail();
    }
  });

  const handlers = {
    title: syncTitle,
    tile_size: syncSize,
    status: syncStatus,
    cells: syncGrid,
    units: syncGrid,
    epochs: syncGrid,
    layer: syncGrid,
    metrics: syncCurrent,
    epoch_index: syncCurrent,
    selected_unit: syncCurrent,
    playing: syncPlaying,
  };
  const listeners = Object.entries(handlers).map(([name, callback]) => {
    model.on(`change:${name}`, callback);
    return [`change:${name}`, callback];
  });

  syncTitle();
  syncSize();
  syncStatus();
  syncGrid();
  syncPlaying();
  el.append(root);

  return () => {
    for (const [event, callback] of listeners) model.off(event, callback);
    for (const undo of cleanups.splice(0)) undo();
    player.stop();
    pool.revokeAll();
    root.remove();
  };
}

export default { initialize: ({ model }) => linkMarker(model), render };
