import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget, { KERNEL_TIMEOUT_MS, NO_KERNEL_IMAGES } from "../dissection_viewer/index.js";
import {
  categoryCounts,
  describeFilter,
  filterUnits,
  formatIou,
  galleryPage,
  normalizeUnits,
  sortUnits,
  tileImagesByUnit,
} from "../dissection_viewer/data.js";
import {
  CONCEPT_RGB,
  UNIT_RGB,
  compositeOverlay,
  maskCoverage,
  maskEdge,
  overlayPlan,
  parseColour,
  scaleMask,
  unpackMask,
} from "../dissection_viewer/masks.js";
import { canvasScale, drawOverlay } from "../dissection_viewer/canvas.js";
import { fakeModel, pngView } from "./helpers.js";

const CATEGORIES = ["color", "object", "part", "texture"];
const LABELS = {
  color: ["red", "blue"],
  object: ["house", "car"],
  part: ["roof", "wheel", "sail"],
  texture: ["striped"],
};

// 30 units: unit u is in category CATEGORIES[u % 4]; IoU falls with u except a few ties.
function makeUnits(count = 30) {
  return Array.from({ length: count }, (_, unit) => {
    const category = CATEGORIES[unit % CATEGORIES.length];
    const names = LABELS[category];
    const iou = unit === 7 || unit === 3 ? 0.05 : Math.round((0.1 - unit * 0.003) * 1000) / 1000;
    return {
      unit,
      concept: unit % 9,
      label: names[unit % names.length],
      category,
      iou,
      detector: iou >= 0.04,
      best: CATEGORIES.map((c, i) => [LABELS[c][0], iou / (i + 1)]),
    };
  });
}

/** numpy.packbits of a 0/1 array. */
function packBits(bits) {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => {
    if (bit) out[i >> 3] |= 1 << (7 - (i & 7));
  });
  return new DataView(out.buffer);
}

// A 4x4 mask with the left half on (unit) or the top half on (concept).
const LEFT = Array.from({ length: 16 }, (_, i) => (i % 4 < 2 ? 1 : 0));
const TOP = Array.from({ length: 16 }, (_, i) => (i < 8 ? 1 : 0));

describe("unit data", () => {
  const units = normalizeUnits(makeUnits());

  it("normalizes records and fills what is missing", () => {
    const [record] = normalizeUnits([{ label: "roof", iou: "x" }]);
    expect(record).toEqual({ unit: 0, concept: -1, label: "roof", category: "", iou: 0, detector: false, best: [] });
    expect(units[5].best[2]).toEqual(["roof", units[5].iou / 3]);
  });

  it("filters by the label's category", () => {
    const parts = filterUnits(units, "part");
    expect(parts.map((u) => u.unit)).toEqual([2, 6, 10, 14, 18, 22, 26]);
    expect(filterUnits(units, "").length).toBe(30);
  });

  it("sorts by IoU (ties by unit number) or by unit", () => {
    const byIou = sortUnits(units, "iou").map((u) => u.unit);
    expect(byIou.slice(0, 5)).toEqual([0, 1, 2, 4, 5]);
    expect(byIou.indexOf(3)).toBeLessThan(byIou.indexOf(7)); // equal IoU 0.05: lower unit first
    const ious = sortUnits(units, "iou").map((u) => u.iou);
    expect(ious).toEqual([...ious].sort((a, b) => b - a));
    expect(sortUnits(units.slice().reverse(), "unit").map((u) => u.unit)).toEqual(units.map((u) => u.unit));
  });

  it("pages the filtered, sorted units and clamps the page", () => {
    const first = galleryPage(units, { category: "", sortBy: "unit", page: 0, pageSize: 12 });
    expect(first.units.map((u) => u.unit)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(first.pages).toBe(3);
    expect(first.total).toBe(30);
    const last = galleryPage(units, { sortBy: "unit", page: 9, pageSize: 12 });
    expect(last.page).toBe(2);
    expect(last.units.map((u) => u.unit)).toEqual([24, 25, 26, 27, 28, 29]);
    const parts = galleryPage(units, { category: "part", sortBy: "iou", page: 1, pageSize: 4 });
    expect(parts.units.map((u) => u.unit)).toEqual([18, 22, 26]);
    expect(parts.total).toBe(7);
    expect(galleryPage([], { page: 3 })).toEqual({ units: [], page: 0, pages: 1, total: 0 });
  });

  it("counts units, detectors and unique detected concepts per category", () => {
    const counts = categoryCounts(units, CATEGORIES);
    const expected = Object.fromEntries(CATEGORIES.map((c) => {
      const members = units.filter((u) => u.category === c);
      const detectors = members.filter((u) => u.detector);
      return [c, { units: members.length, detectors: detectors.length, concepts: new Set(detectors.map((u) => u.label)).size }];
    }));
    expect(Object.fromEntries(counts)).toEqual(expected);
    expect(counts.get("part")).toEqual({ units: 7, detectors: 5, concepts: 3 }); // units 22 and 26 fall below 0.04
    expect(counts.get("texture").concepts).toBe(1);
    expect([...counts.values()].reduce((n, c) => n + c.units, 0)).toBe(30);
  });

  it("formats IoU and describes the filter", () => {
    expect(formatIou(0.08349)).toBe("0.083");
    expect(formatIou(null)).toBe("–");
    expect(describeFilter(26, 9, "part")).toBe("26 units labelled part, 9 detectors");
    expect(describeFilter(1, 1, "")).toBe("1 unit, 1 detector");
  });

  it("matches tile images to units only for the layer shown", () => {
    const answer = { layer: "conv5", units: [4, 9], images: ["a", "b"], masks: ["m4", "m9"], mask_shape: [4, 4] };
    expect(tileImagesByUnit(answer, "conv5").get(9)).toEqual({ image: "b", mask: "m9" });
    expect(tileImagesByUnit(answer, "conv1").size).toBe(0);
  });
});

describe("mask compositing", () => {
  it("unpacks numpy.packbits bytes row-major, high bit first", () => {
    expect([...unpackMask(new Uint8Array([0b10100000]), 3, 1)]).toEqual([1, 0, 1]);
    const bits = [1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1];
    expect([...unpackMask(new Uint8Array(packBits(bits).buffer), 4, 3)]).toEqual(bits);
    expect([...unpackMask(null, 2, 2)]).toEqual([0, 0, 0, 0]);
  });

  it("resizes masks by nearest neighbour at pixel centres", () => {
    const mask = new Uint8Array([1, 0, 0, 1]);
    expect([...scaleMask(mask, 2, 2, 4, 4)]).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
    // 3 -> 2 (PIL NEAREST): output pixel x samples floor((x + 0.5) * 3 / 2) = 0, 2
    expect([...scaleMask(new Uint8Array([1, 0, 0]), 3, 1, 2, 1)]).toEqual([1, 0]);
    expect([...scaleMask(new Uint8Array([0, 0, 1]), 3, 1, 2, 1)]).toEqual([0, 1]);
  });

  it("outlines a mask's boundary but not the picture's border", () => {
    const block = new Uint8Array(36);
    for (let y = 1; y < 5; y++) for (let x = 1; x < 5; x++) block[y * 6 + x] = 1;
    const edge = maskEdge(block, 6, 6);
    expect(edge.reduce((a, b) => a + b, 0)).toBe(12); // the 4x4 block's ring, 2x2 inside stays
    expect(edge[2 * 6 + 2]).toBe(0);
    expect(maskEdge(new Uint8Array(9).fill(1), 3, 3).every((v) => v === 0)).toBe(true);
  });

  it("tints and outlines as overlay.py: unit magenta, concept cyan, by mask choice", () => {
    const width = 6;
    const height = 6;
    const grey = () => new Uint8ClampedArray(width * height * 4).fill(100);
    const unitMask = new Uint8Array(36);
    for (let y = 1; y < 5; y++) for (let x = 1; x < 5; x++) unitMask[y * 6 + x] = 1;
    const conceptMask = new Uint8Array(36);
    for (let x = 0; x < 6; x++) conceptMask[3 * 6 + x] = conceptMask[4 * 6 + x] = conceptMask[5 * 6 + x] = 1;
    const at = (pixels, x, y) => [...pixels.slice((y * width + x) * 4, (y * width + x) * 4 + 3)];

    const unit = compositeOverlay(grey(), width, height, { unitMask, conceptMask, mode: "unit", opacity: 0.5 });
    expect(at(unit, 2, 2)).toEqual([178, 72, 157]); // round(100 * 0.5 + UNIT_RGB * 0.5)
    expect(at(unit, 1, 1)).toEqual(UNIT_RGB); // boundary in full colour
    expect(at(unit, 0, 0)).toEqual([100, 100, 100]);
    expect(at(unit, 0, 4)).toEqual([100, 100, 100]); // concept not drawn in "unit"

    const concept = compositeOverlay(grey(), width, height, { unitMask, conceptMask, mode: "concept", opacity: 0.5 });
    expect(at(concept, 2, 2)).toEqual([100, 100, 100]);
    expect(at(concept, 2, 4)).toEqual([50, 147, 178]); // inside the concept, away from its boundary
    expect(at(concept, 2, 3)).toEqual(CONCEPT_RGB);

    const both = compositeOverlay(grey(), width, height, { unitMask, conceptMask, mode: "both", opacity: 0.5 });
    expect(at(both, 2, 2)).toEqual([178, 72, 157]);
    expect(at(both, 2, 3)).toEqual(CONCEPT_RGB); // the concept's outline over the unit's tint
    expect(at(both, 0, 4)).toEqual([100, 100, 100]); // concept only outlined in "both"

    const clear = compositeOverlay(grey(), width, height, { unitMask, mode: "unit", opacity: 0 });
    expect(at(clear, 2, 2)).toEqual([100, 100, 100]);
    expect(overlayPlan("both")).toEqual({ tintUnit: true, edgeUnit: true, tintConcept: false, edgeConcept: true });
    expect(maskCoverage(unitMask)).toBeCloseTo(16 / 36);
  });

  it("parses colours and picks whole-number magnifications", () => {
    expect(parseColour("#ff2bd6", null)).toEqual(UNIT_RGB);
    expect(parseColour("#00c2ff", null)).toEqual(CONCEPT_RGB);
    expect(parseColour("magenta", [1, 2, 3])).toEqual([1, 2, 3]);
    expect(canvasScale(64, 64, 128)).toBe(2);
    expect(canvasScale(224, 224, 128)).toBe(1);
    expect(canvasScale(40, 20, 96)).toBe(2);
  });
});

// A 2D context that "draws" an image as a uniform grey and records what is put back.
function installCanvas() {
  const frames = new Map();
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function getContext() {
    const canvas = this;
    return {
      imageSmoothingEnabled: true,
      drawImage() {},
      getImageData(x, y, w, hgt) {
        return { width: w, height: hgt, data: new Uint8ClampedArray(w * hgt * 4).fill(100) };
      },
      putImageData(frame) {
        frames.set(canvas, frame);
      },
    };
  };
  return { frames, restore: () => (HTMLCanvasElement.prototype.getContext = original) };
}

describe("drawOverlay", () => {
  let canvasStub;
  beforeEach(() => (canvasStub = installCanvas()));
  afterEach(() => canvasStub.restore());

  it("magnifies the image and draws the unit mask where it is on", () => {
    const canvas = document.createElement("canvas");
    const drawn = drawOverlay(canvas, { width: 4, height: 4 }, {
      scale: 2,
      masks: { unit: packBits(LEFT), concept: packBits(TOP) },
      maskWidth: 4,
      maskHeight: 4,
      mode: "unit",
      opacity: 0.45,
    });
    expect(drawn).toBe(true);
    expect([canvas.width, canvas.height]).toEqual([8, 8]);
    expect(canvas.dataset.drawn).toBe("unit");
    const { data } = canvasStub.frames.get(canvas);
    const pixel = (x, y) => [...data.slice((y * 8 + x) * 4, (y * 8 + x) * 4 + 3)];
    expect(pixel(1, 4)).toEqual([170, 74, 151]); // left half, inside: tinted magenta
    expect(pixel(3, 4)).toEqual(UNIT_RGB); // the mask's right boundary
    expect(pixel(6, 4)).toEqual([100, 100, 100]); // right half: untouched
  });

  it("reports a canvas without a 2D context", () => {
    canvasStub.restore();
    const canvas = document.createElement("canvas");
    canvas.getContext = () => null;
    expect(drawOverlay(canvas, { width: 4, height: 4 }, { scale: 1, mode: "unit" })).toBe(false);
  });
});

function defaults(overrides = {}) {
  return {
    title: "MiniAlexNet",
    layer: "conv5",
    categories: CATEGORIES,
    summary: {},
    units: makeUnits(),
    iou_threshold: 0.04,
    category: "",
    sort_by: "iou",
    page: 0,
    page_size: 12,
    requested_units: [],
    tile_images: {},
    selected_unit: -1,
    detail: {},
    mask: "both",
    opacity: 0.45,
    unit_colour: "#ff2bd6",
    concept_colour: "#00c2ff",
    tile_size: 96,
    status: "",
    ...overrides,
  };
}

// Kernel answers as the Python side sends them.
function tileAnswer(units, layer = "conv5") {
  return { layer, units, images: units.map(() => pngView()), masks: units.map(() => packBits(LEFT)), mask_shape: [4, 4] };
}

function detailAnswer(unit, count = 3, layer = "conv5") {
  return {
    layer,
    unit,
    concept: "roof",
    image_indices: Array.from({ length: count }, (_, i) => 100 + i),
    images: Array.from({ length: count }, () => pngView()),
    unit_masks: Array.from({ length: count }, () => packBits(LEFT)),
    concept_masks: Array.from({ length: count }, () => packBits(TOP)),
    mask_shape: [4, 4],
  };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("the viewer", () => {
  let host;
  let cleanup;
  let canvasStub;

  beforeEach(() => {
    canvasStub = installCanvas();
    globalThis.createImageBitmap = vi.fn(async () => ({ width: 4, height: 4 }));
  });
  afterEach(() => {
    cleanup?.();
    host?.remove();
    canvasStub.restore();
    delete globalThis.createImageBitmap;
  });

  function mount(overrides) {
    const model = fakeModel(defaults(overrides));
    host = document.createElement("div");
    document.body.append(host);
    cleanup = widget.render({ model, el: host });
    const qa = (s) => [...host.querySelectorAll(s)];
    const tiles = () => qa(".cnnvis-dis-tile");
    const shownUnits = () => tiles().map((t) => Number(t.dataset.unit));
    return { model, q: (s) => host.querySelector(s), qa, tiles, shownUnits };
  }

  it("shows one page of tiles by IoU and asks the kernel for their images", () => {
    const { model, q, tiles, shownUnits } = mount();
    expect(q(".cnnvis-title").textContent).toBe("MiniAlexNet · conv5");
    expect(tiles()).toHaveLength(12);
    expect(shownUnits()).toEqual([0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13]);
    const expected = galleryPage(normalizeUnits(makeUnits()), { sortBy: "iou", pageSize: 12 }).units.map((u) => u.unit);
    expect(shownUnits()).toEqual(expected);
    expect(model.get("requested_units")).toEqual(expected);
    expect(model.saves.at(-1).requested_units).toEqual(expected);
    const first = tiles()[0];
    expect(first.querySelector(".cnnvis-dis-unit").textContent).toBe("#0");
    expect(first.querySelector(".cnnvis-dis-tile-label").textContent).toBe("red");
    expect(first.querySelector(".cnnvis-dis-iou").textContent).toBe("IoU 0.100");
    expect(first.querySelector(".cnnvis-dis-category").textContent).toBe("color");
    expect(q(".cnnvis-dis-count").textContent).toBe("30 units, 21 detectors");
    expect(q(".cnnvis-dis-page").textContent).toBe("page 1 of 3");
  });

  it("fades units below the IoU threshold", () => {
    const { model, tiles } = mount({ sort_by: "unit", page: 1 });
    expect(model.get("page")).toBe(1);
    const flags = Object.fromEntries(tiles().map((t) => [t.dataset.unit, t.dataset.detector]));
    expect(flags["20"]).toBe("true"); // IoU 0.040, at the threshold
    expect(flags["21"]).toBe("false"); // IoU 0.037
    const faded = tiles().find((t) => t.dataset.unit === "21");
    expect(faded.title).toBe("unit 21: car (object), IoU 0.037, not a detector (IoU below 0.04)");
  });

  it("filters by category chip, and a second click shows every unit again", () => {
    const { model, q, tiles, shownUnits } = mount({ page: 1 });
    q('.cnnvis-dis-chip[data-category="part"]').click();
    expect(model.get("category")).toBe("part");
    expect(model.get("page")).toBe(0);
    expect(tiles().every((t) => t.dataset.category === "part")).toBe(true);
    expect(shownUnits()).toEqual([2, 6, 10, 14, 18, 22, 26]);
    expect(model.get("requested_units")).toEqual([2, 6, 10, 14, 18, 22, 26]);
    expect(q(".cnnvis-dis-count").textContent).toBe("7 units labelled part, 5 detectors");
    expect(q('.cnnvis-dis-chip[data-category="part"]').getAttribute("aria-pressed")).toBe("true");
    expect(q(".cnnvis-dis-pager").hidden).toBe(true);
    q('.cnnvis-dis-chip[data-category="part"]').click();
    expect(model.get("category")).toBe("");
    expect(tiles()).toHaveLength(12);
    q('.cnnvis-dis-chip[data-category="texture"]').click();
    q('.cnnvis-dis-chip[data-category=""]').click();
    expect(model.get("category")).toBe("");
  });

  it("follows a category the kernel sets (a click on the chart's bar)", () => {
    const { model, tiles } = mount();
    model.set("category", "object");
    expect(tiles().map((t) => t.dataset.category)).toEqual(Array(8).fill("object"));
    expect(model.get("requested_units")).toEqual([1, 5, 9, 13, 17, 21, 25, 29]);
  });

  it("chip labels count units; their titles the detectors and unique concepts", () => {
    const { q } = mount({ summary: { part: { concepts: 5, detectors: 7, units: 7 } } });
    expect(q('.cnnvis-dis-chip[data-category=""]').textContent).toBe("all 30");
    const part = q('.cnnvis-dis-chip[data-category="part"]');
    expect(part.textContent).toBe("part 7");
    expect(part.title).toBe("7 units labelled part, 5 detectors; 5 unique concepts detected"); // the kernel's count wins
  });

  it("sorts by unit number and pages", () => {
    const { model, q, shownUnits } = mount();
    q('.cnnvis-dis-sort[data-sort="unit"]').click();
    expect(model.get("sort_by")).toBe("unit");
    expect(shownUnits()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    q('.cnnvis-dis-page-step[data-page-step="1"]').click();
    expect(model.get("page")).toBe(1);
    expect(shownUnits()).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
    q('.cnnvis-dis-page-step[data-page-step="1"]').click();
    expect(shownUnits()).toEqual([24, 25, 26, 27, 28, 29]);
    expect(q('.cnnvis-dis-page-step[data-page-step="1"]').disabled).toBe(true);
    expect(q(".cnnvis-dis-page").textContent).toBe("page 3 of 3");
    model.set("page", 7); // the kernel sets a page past the end: the view clamps it
    expect(model.get("page")).toBe(2);
  });

  it("draws the kernel's tile images with the unit mask, ignoring another layer's", async () => {
    const { model, q } = mount({ sort_by: "unit" });
    model.set("tile_images", tileAnswer([0, 1, 2], "conv1"));
    await flush();
    expect(canvasStub.frames.size).toBe(0);
    model.set("tile_images", tileAnswer([0, 1, 2]));
    await flush();
    const canvas = q('.cnnvis-dis-tile[data-unit="1"] canvas');
    expect(canvas.dataset.drawn).toBe("unit");
    const frame = canvasStub.frames.get(canvas);
    expect([frame.width, frame.height]).toEqual([96, 96]); // 4 px image x 24 for a 96 px tile
    const at = (x, y) => [...frame.data.slice((y * 96 + x) * 4, (y * 96 + x) * 4 + 3)];
    expect(at(10, 50)).toEqual([170, 74, 151]);
    expect(at(80, 50)).toEqual([100, 100, 100]);
    expect(q('.cnnvis-dis-tile[data-unit="5"] canvas').dataset.drawn).toBeUndefined();
  });

  it("says when units' images go unanswered (no kernel), and clears the note once they arrive", async () => {
    vi.useFakeTimers();
    const { model, q } = mount({ sort_by: "unit", page_size: 3 });
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS + 1);
    expect(q(".cnnvis-dis-status").textContent).toBe(NO_KERNEL_IMAGES);
    model.set("tile_images", tileAnswer([0, 1, 2]));
    expect(q(".cnnvis-dis-status").textContent).toBe("");
    vi.useRealTimers();
  });

  it("shows no note when the kernel answers in time", () => {
    vi.useFakeTimers();
    const { model, q } = mount({ sort_by: "unit", page_size: 3 });
    model.set("tile_images", tileAnswer([0, 1, 2]));
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS + 1);
    expect(q(".cnnvis-dis-status").hidden).toBe(true);
    vi.useRealTimers();
  });

  it("opens a unit's detail and draws its images with the chosen mask and opacity", async () => {
    const { model, q, qa } = mount();
    q('.cnnvis-dis-tile[data-unit="2"]').click();
    expect(model.get("selected_unit")).toBe(2);
    expect(q('.cnnvis-dis-tile[data-unit="2"]').classList.contains("cnnvis-selected")).toBe(true);
    expect(q(".cnnvis-dis-detail-title").textContent).toBe("unit 2 · sail");
    expect(q(".cnnvis-dis-detail-meta").textContent).toBe("part · IoU 0.094 · detector");
    expect(qa(".cnnvis-dis-best tbody tr").map((r) => r.textContent)).toEqual([
      "colorred0.094", "objecthouse0.047", "partroof0.031", "texturestriped0.024",
    ]);
    expect(q(".cnnvis-dis-best .cnnvis-dis-own").dataset.category).toBe("part");
    expect(q(".cnnvis-dis-legend").textContent).toContain("ground truth: sail");
    expect(q(".cnnvis-dis-legend-unit .cnnvis-dis-swatch").style.background).toBe("rgb(255, 43, 214)");
    expect(qa("canvas.cnnvis-dis-overlay")).toHaveLength(0); // images not here yet

    model.set("detail", detailAnswer(2));
    await flush();
    const canvases = qa("canvas.cnnvis-dis-overlay");
    expect(canvases).toHaveLength(3);
    expect(qa(".cnnvis-dis-figure figcaption").map((c) => c.textContent)).toEqual(["#1 · image 100", "#2 · image 101", "#3 · image 102"]);
    const pixel = (canvas, x, y) => {
      const frame = canvasStub.frames.get(canvas);
      return [...frame.data.slice((y * frame.width + x) * 4, (y * frame.width + x) * 4 + 3)];
    };
    // 4 px images at x32 = 128 px; "both": unit tinted (left half), concept outlined (top half)
    expect(canvases[0].width).toBe(128);
    expect(pixel(canvases[0], 10, 100)).toEqual([170, 74, 151]);
    expect(pixel(canvases[0], 100, 63)).toEqual(CONCEPT_RGB);
    expect(pixel(canvases[0], 100, 20)).toEqual([100, 100, 100]);

    q('.cnnvis-dis-mask[data-mask="concept"]').click();
    expect(model.get("mask")).toBe("concept");
    expect(canvases[0].dataset.drawn).toBe("concept");
    expect(pixel(canvases[0], 10, 100)).toEqual([100, 100, 100]);
    expect(pixel(canvases[0], 100, 20)).toEqual([55, 142, 170]); // round(100 * 0.55 + CONCEPT_RGB * 0.45)

    const slider = q("input.cnnvis-dis-opacity");
    slider.value = "1";
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    expect(model.get("opacity")).toBe(1);
    expect(q(".cnnvis-dis-opacity-value").textContent).toBe("100%");
    expect(pixel(canvases[0], 100, 20)).toEqual(CONCEPT_RGB);

    q(".cnnvis-dis-close").click();
    expect(model.get("selected_unit")).toBe(-1);
    expect(q(".cnnvis-dis-detail")).toBeNull();
  });

  it("waits for the detail of the unit it opened", async () => {
    const { model, q, qa } = mount({ selected_unit: 4, detail: detailAnswer(9) });
    expect(q(".cnnvis-dis-detail").dataset.unit).toBe("4");
    expect(qa("canvas.cnnvis-dis-overlay")).toHaveLength(0);
    expect(q(".cnnvis-dis-figures").textContent).toBe("loading images…");
    model.set("detail", detailAnswer(4, 2));
    await flush();
    expect(qa("canvas.cnnvis-dis-overlay").every((c) => c.dataset.drawn === "both")).toBe(true);
  });

  it("shows the kernel's status and a new layer's units", () => {
    const { model, q, tiles } = mount({ category: "part", selected_unit: 2 });
    model.set("status", "The dataset of this dissection is not available; set result.dataset = ...");
    expect(q(".cnnvis-dis-status").hidden).toBe(false);
    expect(q(".cnnvis-dis-status").textContent).toMatch(/set result.dataset/);
    model.set("category", "");
    model.set("selected_unit", -1);
    model.set("layer", "conv1");
    model.set("units", makeUnits(5));
    expect(tiles()).toHaveLength(5);
    expect(q(".cnnvis-title").textContent).toBe("MiniAlexNet · conv1");
    expect(model.get("requested_units")).toEqual([0, 1, 2, 4, 3]);
  });

  it("removes its listeners on cleanup", () => {
    const { model } = mount();
    expect(model.listenerCount()).toBeGreaterThan(10);
    cleanup();
    cleanup = null;
    expect(model.listenerCount()).toBe(0);
    expect(host.querySelector(".cnnvis-dissection")).toBeNull();
  });
});
