import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget from "../training_timeline/index.js";
import { clampIndex, epochLabel, metricsAt, metricsText, normalizeCell } from "../training_timeline/data.js";
import { createPlayer } from "../training_timeline/player.js";
import { fakeModel, pngView, stubObjectUrls } from "./helpers.js";

const EPOCHS = [0, 1, 2, 5, 10, 12];
const UNITS = [3, 7];

function makeCell(unit, epoch, { am = false } = {}) {
  return {
    unit,
    epoch,
    images: [pngView()],
    projections: [pngView()],
    values: [unit + epoch / 10],
    indices: [100 * unit + epoch],
    am: am ? pngView() : null,
    am_value: am ? 2.5 : null,
  };
}

function defaults(overrides = {}) {
  const epochs = overrides.epochs ?? EPOCHS;
  const units = overrides.units ?? UNITS;
  return {
    title: "MiniAlexNet · layer conv5",
    layer: "conv5",
    units,
    epochs,
    cells: units.flatMap((u) => epochs.map((e) => makeCell(u, e))),
    metrics: {
      epochs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
      series: {
        train_loss: [null, 3.47, 3.37, 2.54, 1.9, 1.59, 1.49, 1.46, 1.33, 0.8, 0.42, 0.148, 0.0661],
        val_accuracy: [0.031, 0.032, 0.1, 0.172, 0.207, 0.242, 0.273, 0.24, 0.465, 0.918, 0.973, 0.998, 0.999],
      },
    },
    epoch_index: 0,
    playing: false,
    interval_ms: 500,
    selected_unit: -1,
    tile_size: 48,
    status: "",
    ...overrides,
  };
}

let urls;
let cleanup;
let host;

function mount(overrides) {
  const model = fakeModel(defaults(overrides));
  host = document.createElement("div");
  document.body.append(host);
  cleanup = widget.render({ model, el: host });
  const q = (s) => host.querySelector(s);
  const qa = (s) => [...host.querySelectorAll(s)];
  const currentColumns = () => [...new Set(qa(".cnnvis-tl-cell.cnnvis-tl-current").map((c) => Number(c.dataset.column)))];
  return { model, el: host, q, qa, currentColumns };
}

function scrubTo(scrubber, value) {
  scrubber.value = String(value);
  scrubber.dispatchEvent(new Event("input", { bubbles: true }));
}

beforeEach(() => {
  urls = stubObjectUrls();
});

afterEach(() => {
  cleanup?.();
  cleanup = undefined;
  host?.remove();
  vi.useRealTimers();
});

describe("data helpers", () => {
  it("labels, clamps and reads metrics", () => {
    expect(epochLabel(5)).toBe("epoch 5");
    expect(epochLabel(undefined)).toBe("no epochs");
    expect(clampIndex(9, 6)).toBe(5);
    expect(clampIndex(-2, 6)).toBe(0);
    expect(clampIndex(3, 0)).toBe(0);
    const metrics = { epochs: [0, 1, 5], series: { loss: [null, 2.5, 1.25], acc: [0.1, 0.2, 0.75] } };
    expect(metricsAt(metrics, 5)).toEqual([["loss", 1.25], ["acc", 0.75]]);
    expect(metricsAt(metrics, 0)).toEqual([["loss", null], ["acc", 0.1]]);
    expect(metricsAt(metrics, 3)).toEqual([]);
    expect(metricsText(metricsAt(metrics, 0))).toBe("loss – · acc 0.100");
  });

  it("normalizes partial cells", () => {
    const cell = normalizeCell({ unit: "4", epoch: 2.0, values: [1.5, "x"] });
    expect(cell).toMatchObject({ unit: 4, epoch: 2, images: [], projections: [], values: [1.5, null], am: null, am_value: null });
  });
});

describe("rendering", () => {
  it("draws units as rows and epochs as columns, with images from object URLs", () => {
    const { q, qa } = mount();
    expect(q(".cnnvis-timeline")).not.toBeNull();
    expect(q(".cnnvis-title").textContent).toBe("MiniAlexNet · layer conv5");
    expect(qa(".cnnvis-tl-head").map((b) => b.textContent)).toEqual(EPOCHS.map((e) => `epoch ${e}`));
    expect(qa(".cnnvis-tl-unit").map((d) => d.textContent)).toEqual(["unit 3", "unit 7"]);
    const cells = qa("button.cnnvis-tl-cell");
    expect(cells).toHaveLength(UNITS.length * EPOCHS.length);
    // row-major: the second row starts with unit 7 at epoch 0
    expect([cells[6].dataset.unit, cells[6].dataset.epoch]).toEqual(["7", "0"]);
    expect(qa("img.cnnvis-tl-crop")).toHaveLength(12);
    expect(qa("img.cnnvis-tl-projection")).toHaveLength(12);
    expect(qa("img.cnnvis-tl-am")).toHaveLength(0);
    expect(urls.create).toHaveBeenCalledTimes(24);
    expect(qa("img").every((img) => img.src.startsWith("blob:test/"))).toBe(true);
    expect(cells[1].getAttribute("aria-label")).toBe("conv5 unit 3, epoch 1, activation 3.10. Show details.");
    expect(q(".cnnvis-tl-legend").textContent).toMatch(/top image · DeconvNet projection/);
    expect(q(".cnnvis-tl-epoch").textContent).toBe("epoch 0");
    expect(q(".cnnvis-tl-metrics").textContent).toBe("train_loss – · val_accuracy 0.0310");
  });

  it("shows AM images when cells carry them", () => {
    const cells = UNITS.flatMap((u) => EPOCHS.map((e) => makeCell(u, e, { am: true })));
    const { qa, q } = mount({ cells });
    expect(qa("img.cnnvis-tl-am")).toHaveLength(12);
    expect(q(".cnnvis-tl-legend").textContent).toMatch(/activation maximization/);
  });

  it("puts text in as text, never as markup", () => {
    const { q, qa } = mount({ layer: "<img src=x onerror=alert(1)>", title: "<b>bold</b>" });
    expect(q(".cnnvis-title").textContent).toBe("<b>bold</b>");
    expect(q(".cnnvis-title b")).toBeNull();
    expect(qa("img").every((img) => img.src.startsWith("blob:"))).toBe(true);
    expect(q(".cnnvis-tl-corner").textContent).toBe("<img src=x onerror=alert(1)>");
  });

  it("says when nothing is recorded and disables the controls", () => {
    const { q, qa } = mount({ epochs: [], units: [], cells: [], status: "No epochs recorded yet." });
    expect(qa(".cnnvis-tl-cell")).toHaveLength(0);
    expect(q(".cnnvis-tl-status").textContent).toBe("No epochs recorded yet.");
    expect(q(".cnnvis-tl-play").disabled).toBe(true);
    expect(q(".cnnvis-tl-scrubber").disabled).toBe(true);
  });

  it("rebuilds the grid when the kernel adds an epoch, revoking the old URLs once their images loaded", async () => {
    const { model, qa } = mount({ epochs: [0, 1], cells: UNITS.flatMap((u) => [0, 1].map((e) => makeCell(u, e))) });
    expect(qa("button.cnnvis-tl-cell")).toHaveLength(4);
    const before = [...urls.live];
    const replaced = [...qa("img")];
    model.set("epochs", [0, 1, 2]);
    replaced.push(...qa("img"));
    model.set("cells", UNITS.flatMap((u) => [0, 1, 2].map((e) => makeCell(u, e))));
    replaced.push(...qa("img").filter((img) => !replaced.includes(img)));
    expect(qa("button.cnnvis-tl-cell")).toHaveLength(6);
    // the replaced images are still loading (jsdom never finishes): their URLs stay valid
    expect(before.every((url) => urls.live.has(url))).toBe(true);
    const current = new Set(qa("img"));
    for (const img of replaced) if (!current.has(img)) img.dispatchEvent(new Event("load"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(before.every((url) => !urls.live.has(url))).toBe(true);
    expect(urls.live.size).toBe(12);
  });
});

describe("scrubber", () => {
  it("moves the highlighted column, the label and epoch_index", () => {
    const { model, q, currentColumns } = mount();
    const scrubber = q(".cnnvis-tl-scrubber");
    expect(scrubber.max).toBe("5");
    expect(currentColumns()).toEqual([0]);
    scrubTo(scrubber, 3);
    expect(model.get("epoch_index")).toBe(3);
    expect(model.saves.at(-1).epoch_index).toBe(3);
    expect(currentColumns()).toEqual([3]);
    expect(q(".cnnvis-tl-head.cnnvis-tl-current").textContent).toBe("epoch 5");
    expect(q(".cnnvis-tl-epoch").textContent).toBe("epoch 5");
    expect(scrubber.getAttribute("aria-valuetext")).toBe("epoch 5");
    expect(q(".cnnvis-tl-metrics").textContent).toBe("train_loss 1.59 · val_accuracy 0.242");
  });

  it("follows epoch_index set by the kernel, clamped", () => {
    const { model, q, currentColumns } = mount();
    model.set("epoch_index", 5);
    expect(currentColumns()).toEqual([5]);
    expect(q(".cnnvis-tl-scrubber").value).toBe("5");
    expect(q(".cnnvis-tl-epoch").textContent).toBe("epoch 12");
    model.set("epoch_index", 40);
    expect(currentColumns()).toEqual([5]);
  });

  it("jumps to an epoch when its header is pressed", () => {
    const { model, qa } = mount();
    qa(".cnnvis-tl-head")[4].click();
    expect(model.get("epoch_index")).toBe(4);
    expect(qa(".cnnvis-tl-head")[4].getAttribute("aria-pressed")).toBe("true");
  });
});

describe("play", () => {
  it("advances on a timer and stops at the last epoch", () => {
    vi.useFakeTimers();
    const { model, q, currentColumns } = mount({ epoch_index: 2 });
    const play = q(".cnnvis-tl-play");
    expect(play.textContent).toBe("▶ Play");
    play.click();
    expect(model.get("playing")).toBe(true);
    expect(play.getAttribute("aria-pressed")).toBe("true");
    expect(play.textContent).toBe("❚❚ Pause");
    vi.advanceTimersByTime(499);
    expect(model.get("epoch_index")).toBe(2);
    vi.advanceTimersByTime(1);
    expect(model.get("epoch_index")).toBe(3);
    expect(currentColumns()).toEqual([3]);
    expect(q(".cnnvis-tl-epoch").textContent).toBe("epoch 5");
    vi.advanceTimersByTime(1000);
    expect(model.get("epoch_index")).toBe(5);
    expect(model.get("playing")).toBe(false);
    expect(play.textContent).toBe("▶ Play");
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(model.get("epoch_index")).toBe(5);
  });

  it("starts again from the first epoch when played at the last", () => {
    vi.useFakeTimers();
    const { model, q } = mount({ epoch_index: 5 });
    q(".cnnvis-tl-play").click();
    expect(model.get("epoch_index")).toBe(0);
    vi.advanceTimersByTime(500);
    expect(model.get("epoch_index")).toBe(1);
  });

  it("pause stops the timer", () => {
    vi.useFakeTimers();
    const { model, q } = mount();
    const play = q(".cnnvis-tl-play");
    play.click();
    vi.advanceTimersByTime(500);
    expect(model.get("epoch_index")).toBe(1);
    play.click();
    expect(model.get("playing")).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(3000);
    expect(model.get("epoch_index")).toBe(1);
  });

  it("plays when the kernel sets playing, at the kernel's speed", () => {
    vi.useFakeTimers();
    const { model } = mount({ interval_ms: 200 });
    model.set("playing", true);
    vi.advanceTimersByTime(400);
    expect(model.get("epoch_index")).toBe(2);
    model.set("playing", false);
    vi.advanceTimersByTime(400);
    expect(model.get("epoch_index")).toBe(2);
  });

  it("the player alone: never schedules with fewer than two epochs", () => {
    vi.useFakeTimers();
    const onEnd = vi.fn();
    const player = createPlayer({ getIndex: () => 0, setIndex: vi.fn(), count: () => 1, interval: () => 100, onEnd });
    player.start();
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(player.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("detail panel", () => {
  it("opens on a cell click with that cell's images, value, image index and metrics", () => {
    const { model, q, qa } = mount();
    const cell = qa("button.cnnvis-tl-cell").find((c) => c.dataset.unit === "7" && c.dataset.epoch === "10");
    cell.click();
    expect(model.get("selected_unit")).toBe(7);
    expect(model.get("epoch_index")).toBe(4);
    expect(model.saves.at(-1)).toMatchObject({ selected_unit: 7, epoch_index: 4 });
    const panel = q(".cnnvis-tl-detail");
    expect(panel.dataset.unit).toBe("7");
    expect(panel.dataset.epoch).toBe("10");
    expect(q(".cnnvis-tl-detail-title").textContent).toBe("conv5 unit 7 · epoch 10");
    expect(qa(".cnnvis-tl-detail-crop")).toHaveLength(1);
    expect(qa(".cnnvis-tl-detail-projection")).toHaveLength(1);
    expect(q(".cnnvis-tl-detail-crop").src).toBe(cell.querySelector(".cnnvis-tl-crop").src);
    const facts = Object.fromEntries(
      qa(".cnnvis-tl-facts dt").map((dt) => [dt.textContent, dt.nextElementSibling.textContent]),
    );
    expect(facts).toEqual({ activation: "8.00", "probe image": "#710", train_loss: "0.420", val_accuracy: "0.973" });
    expect(cell.classList.contains("cnnvis-tl-selected")).toBe(true);
  });

  it("follows the scrubber and closes with the button or Escape", () => {
    const { model, q, qa } = mount({ selected_unit: 3 });
    expect(q(".cnnvis-tl-detail-title").textContent).toBe("conv5 unit 3 · epoch 0");
    scrubTo(q(".cnnvis-tl-scrubber"), 2);
    expect(q(".cnnvis-tl-detail-title").textContent).toBe("conv5 unit 3 · epoch 2");
    q(".cnnvis-tl-detail-close").click();
    expect(model.get("selected_unit")).toBe(-1);
    expect(q(".cnnvis-tl-detail")).toBeNull();
    qa("button.cnnvis-tl-cell")[0].click();
    expect(q(".cnnvis-tl-detail")).not.toBeNull();
    q(".cnnvis-tl-detail").dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(model.get("selected_unit")).toBe(-1);
    expect(q(".cnnvis-tl-detail")).toBeNull();
  });

  it("shows the AM image and objective when recorded", () => {
    const cells = UNITS.flatMap((u) => EPOCHS.map((e) => makeCell(u, e, { am: true })));
    const { q } = mount({ cells, selected_unit: 3 });
    expect(q(".cnnvis-tl-detail-am")).not.toBeNull();
    expect(q(".cnnvis-tl-facts").textContent).toContain("AM objective2.50");
  });
});

describe("cleanup", () => {
  it("removes listeners and timers and revokes every object URL", () => {
    vi.useFakeTimers();
    const { model, q, el } = mount();
    expect(model.listenerCount()).toBeGreaterThan(0);
    q(".cnnvis-tl-play").click();
    expect(vi.getTimerCount()).toBe(1);
    const scrubber = q(".cnnvis-tl-scrubber");
    cleanup();
    cleanup = undefined;
    expect(model.listenerCount()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(urls.live.size).toBe(0);
    expect(urls.revoke).toHaveBeenCalledTimes(24);
    expect(el.querySelector(".cnnvis-timeline")).toBeNull();
    const saves = model.saves.length;
    scrubTo(scrubber, 4);
    expect(model.saves.length).toBe(saves);
  });
});
