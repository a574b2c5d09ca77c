import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget, { KERNEL_TIMEOUT_MS } from "../neuron_gallery/index.js";
import { fakeModel, finishLoading, makeTile, pngBytes, pngView, stubObjectUrls } from "./helpers.js";

function defaults(overrides = {}) {
  return {
    title: "AlexNet conv1",
    layers: ["conv1", "conv2", "conv5"],
    layer: "conv1",
    unit_count: 40,
    page: 0,
    page_size: 16,
    tiles: [makeTile(0), makeTile(1, { flags: ["dead", "aliasing"] }), makeTile(2, { count: 4, filter: false })],
    tile_size: 40,
    selected_unit: -1,
    detail: null,
    status: "",
    progress: -1,
    computing: false,
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
  return { model, el: host, q: (s) => host.querySelector(s), qa: (s) => [...host.querySelectorAll(s)] };
}

const key = (target, k) => target.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));

beforeEach(() => {
  urls = stubObjectUrls();
});

afterEach(() => {
  cleanup?.();
  cleanup = undefined;
  host?.remove();
  vi.useRealTimers();
});

describe("grid", () => {
  it("draws one tile per unit and one crop per image", () => {
    const { qa, q } = mount();
    const tiles = qa(".cnnvis-tile");
    expect(tiles.map((t) => t.dataset.unit)).toEqual(["0", "1", "2"]);
    expect(tiles.map((t) => t.querySelectorAll("img.cnnvis-crop").length)).toEqual([9, 9, 4]);
    expect(tiles.map((t) => t.querySelectorAll("img.cnnvis-filter").length)).toEqual([1, 1, 0]);
    expect(tiles.map((t) => t.querySelector(".cnnvis-label").textContent)).toEqual([
      "conv1 #0",
      "conv1 #1",
      "conv1 #2",
    ]);
    expect(tiles[1].querySelectorAll(".cnnvis-flag")).toHaveLength(2);
    expect(tiles[1].textContent).toContain("aliasing");
    expect(q(".cnnvis-gallery .cnnvis-title").textContent).toBe("AlexNet conv1");
    expect(q(".cnnvis-gallery > style").textContent).toContain("var(--jp-layout-color1, #fff)");
  });

  it("lays crops out in ceil(sqrt(k)) columns at tile_size", () => {
    const { qa, q, model } = mount();
    const [nine, , four] = qa(".cnnvis-crops");
    expect(nine.style.getPropertyValue("grid-template-columns")).toBe("repeat(3, var(--cnnvis-tile))");
    expect(four.style.getPropertyValue("grid-template-columns")).toBe("repeat(2, var(--cnnvis-tile))");
    const root = q(".cnnvis-gallery");
    expect(root.style.getPropertyValue("--cnnvis-tile")).toBe("40px");
    model.set("tile_size", 64);
    expect(root.style.getPropertyValue("--cnnvis-tile")).toBe("64px");
  });

  it("makes one PNG object URL per image and uses it as src", () => {
    const { q } = mount();
    expect(urls.create).toHaveBeenCalledTimes(9 + 1 + 9 + 1 + 4);
    const blob = urls.create.mock.calls[0][0];
    expect(blob.type).toBe("image/png");
    expect(blob.size).toBe(pngBytes().length);
    expect(q("img.cnnvis-crop").getAttribute("src")).toBe("blob:test/0");
  });

  it("accepts ArrayBuffer and Uint8Array image data", () => {
    const tile = { ...makeTile(5, { count: 2, filter: false }), images: [pngBytes().buffer, pngBytes()] };
    const { qa } = mount({ tiles: [tile] });
    expect(qa("img.cnnvis-crop")).toHaveLength(2);
  });

  it("renders labels, flags, title and status as text, never HTML", () => {
    const evil = '<img src=x onerror="window.__pwned=1">';
    const tile = makeTile(0, { count: 1, filter: false, label: evil, flags: [evil] });
    const { qa, q, model } = mount({ tiles: [tile], title: evil, status: evil, layers: [evil], layer: evil });
    model.set("selected_unit", 0);
    expect(qa("img").filter((img) => !img.classList.contains("cnnvis-crop") && !img.classList.contains("cnnvis-detail-image"))).toEqual([]);
    expect(qa("img:not([class])")).toHaveLength(0);
    expect(q(".cnnvis-label").textContent).toBe(evil);
    expect(q(".cnnvis-title").textContent).toBe(evil);
    expect(q(".cnnvis-status").textContent).toBe(evil);
    expect(q(".cnnvis-detail-title").textContent).toBe(evil);
    expect(q("select.cnnvis-layer option").textContent).toBe(evil);
    expect(window.__pwned).toBeUndefined();
  });

  it("shows a note when there are no tiles", () => {
    const { qa, q } = mount({ tiles: [], unit_count: 0 });
    expect(qa(".cnnvis-tile")).toHaveLength(0);
    expect(q(".cnnvis-empty").textContent).toBe("No units to show.");
  });
});

describe("deconvnet projections", () => {
  it("draws each crop's projection in a second grid and pairs them in the detail view", () => {
    const { qa, q } = mount({ tiles: [makeTile(0, { projections: true }), makeTile(1, { count: 4 })] });
    const tiles = qa(".cnnvis-tile");
    expect(tiles.map((t) => t.querySelectorAll("img.cnnvis-projection").length)).toEqual([9, 0]);
    expect(tiles[0].querySelector(".cnnvis-tile-pair .cnnvis-projections")).not.toBeNull();
    const first = tiles[0].querySelector("img.cnnvis-projection");
    expect(first.alt).toBe("conv1 #0, projection of image 1");
    expect(first.title).toContain("DeconvNet projection: activation");
    expect(first.src).toMatch(/^blob:test\//);
    tiles[0].click();
    const pairs = q(".cnnvis-detail").querySelectorAll(".cnnvis-detail-pair");
    expect(pairs).toHaveLength(9);
    for (const pair of pairs) {
      expect(pair.querySelector("img.cnnvis-detail-image")).not.toBeNull();
      expect(pair.querySelector("img.cnnvis-detail-projection")).not.toBeNull();
    }
    tiles[1].click();
    expect(q(".cnnvis-detail").querySelectorAll(".cnnvis-detail-pair")).toHaveLength(0);
  });
});

describe("detail view", () => {
  it("opens on click with large images, values and indices", () => {
    const { q, qa, model } = mount();
    expect(q(".cnnvis-detail")).toBeNull();
    q('.cnnvis-tile[data-unit="1"]').click();
    expect(model.get("selected_unit")).toBe(1);
    expect(model.saves.at(-1).selected_unit).toBe(1);
    const panel = q(".cnnvis-detail");
    expect(panel).not.toBeNull();
    expect(panel.querySelectorAll("img.cnnvis-detail-image")).toHaveLength(9);
    const values = [...panel.querySelectorAll(".cnnvis-detail-value")].map((n) => n.textContent);
    expect(values).toEqual(makeTile(1).values.map((v) => v.toPrecision(3)));
    expect(values[0]).toBe("2.00");
    expect(values[2]).toBe("1.33");
    const indices = [...panel.querySelectorAll(".cnnvis-detail-index")].map((n) => n.textContent.trim());
    expect(indices.slice(0, 2)).toEqual(["#100", "#101"]);
    expect(panel.querySelectorAll("img.cnnvis-detail-filter")).toHaveLength(1);
    expect(panel.querySelector(".cnnvis-detail-title").textContent).toBe("conv1 #1");
    expect(panel.querySelectorAll(".cnnvis-flag")).toHaveLength(2);
    expect(q('.cnnvis-tile[data-unit="1"]').classList.contains("cnnvis-selected")).toBe(true);
    expect(qa(".cnnvis-selected")).toHaveLength(1);
  });

  it("opens from the keyboard with Enter and Space", () => {
    const { q, model } = mount();
    const tile = q('.cnnvis-tile[data-unit="2"]');
    expect(tile.getAttribute("tabindex")).toBe("0");
    expect(tile.getAttribute("role")).toBe("button");
    key(tile, "Enter");
    expect(model.get("selected_unit")).toBe(2);
    expect(q(".cnnvis-detail").querySelectorAll("img.cnnvis-detail-image")).toHaveLength(4);
    expect(document.activeElement).toBe(q(".cnnvis-detail-close"));
    model.set("selected_unit", -1);
    key(q('.cnnvis-tile[data-unit="0"]'), " ");
    expect(model.get("selected_unit")).toBe(0);
  });

  it("closes with Escape and with the close button", () => {
    const { q, model } = mount();
    q('.cnnvis-tile[data-unit="0"]').click();
    key(q(".cnnvis-detail-close"), "Escape");
    expect(model.get("selected_unit")).toBe(-1);
    expect(model.saves.at(-1).selected_unit).toBe(-1);
    expect(q(".cnnvis-detail")).toBeNull();
    expect(document.activeElement).toBe(q('.cnnvis-tile[data-unit="0"]'));

    q('.cnnvis-tile[data-unit="0"]').click();
    q(".cnnvis-detail-close").click();
    expect(model.get("selected_unit")).toBe(-1);
    expect(q(".cnnvis-detail")).toBeNull();
  });

  it("opens when the kernel sets selected_unit", () => {
    const { q, model } = mount();
    model.set("selected_unit", 2);
    expect(q(".cnnvis-detail").dataset.unit).toBe("2");
    model.set("selected_unit", 7); // not on this page
    expect(q(".cnnvis-detail")).toBeNull();
  });

  it("adds receptive-field images from the detail trait for the selected unit only", async () => {
    const { q, model } = mount();
    q('.cnnvis-tile[data-unit="1"]').click();
    model.set("detail", { unit: 0, context: [new DataView(pngBytes().buffer)] });
    expect(q(".cnnvis-detail").querySelectorAll("img.cnnvis-detail-context")).toHaveLength(0);
    const before = urls.revoke.mock.calls.length;
    model.set("detail", { unit: 1, context: [pngBytes(), pngBytes(), pngBytes()] });
    const panel = q(".cnnvis-detail");
    expect(panel.querySelectorAll("img.cnnvis-detail-context")).toHaveLength(3);
    expect(panel.querySelectorAll("img.cnnvis-detail-image")).toHaveLength(9);
    const contextUrls = [...panel.querySelectorAll("img.cnnvis-detail-context")].map((img) => img.getAttribute("src"));
    const closed = [...panel.querySelectorAll("img")];
    q(".cnnvis-detail-close").click();
    expect(contextUrls.every((url) => urls.live.has(url))).toBe(true); // still loading: kept
    await finishLoading(closed);
    const revoked = urls.revoke.mock.calls.slice(before).map((c) => c[0]);
    expect(revoked).toEqual(expect.arrayContaining(contextUrls));
  });

  it("shows the detail trait's legend as text beside the context images", () => {
    const { q, model } = mount();
    q('.cnnvis-tile[data-unit="1"]').click();
    expect(q(".cnnvis-detail-legend")).toBeNull();
    const legend = "Magenta: the unit's receptive field. <b>Blue</b>: what the model saw.";
    model.set("detail", { unit: 1, context: [pngBytes()], legend });
    const shown = q(".cnnvis-detail-legend");
    expect(shown.textContent).toBe(legend);
    expect(shown.querySelector("b")).toBeNull(); // text, never HTML
  });
});

describe("paging and layers", () => {
  it("labels the page and disables buttons at the ends", () => {
    const { q, model } = mount();
    expect(q(".cnnvis-page").textContent).toBe("page 1 of 3");
    expect(q(".cnnvis-prev").disabled).toBe(true);
    expect(q(".cnnvis-next").disabled).toBe(false);
    model.set("page", 2);
    expect(q(".cnnvis-page").textContent).toBe("page 3 of 3");
    expect(q(".cnnvis-prev").disabled).toBe(false);
    expect(q(".cnnvis-next").disabled).toBe(true);
    model.set("unit_count", 100);
    expect(q(".cnnvis-page").textContent).toBe("page 3 of 7");
    expect(q(".cnnvis-next").disabled).toBe(false);
  });

  it("next and prev set page and save", () => {
    const { q, model } = mount();
    q(".cnnvis-next").click();
    expect(model.get("page")).toBe(1);
    expect(model.saves.at(-1).page).toBe(1);
    expect(q(".cnnvis-page").textContent).toBe("page 2 of 3");
    q(".cnnvis-next").click();
    expect(model.get("page")).toBe(2);
    expect(q(".cnnvis-next").disabled).toBe(true);
    q(".cnnvis-prev").click();
    expect(model.get("page")).toBe(1);
    expect(model.saves).toHaveLength(3);
  });

  it("the layer picker lists layers and sets layer", () => {
    const { q, model } = mount();
    const select = q("select.cnnvis-layer");
    expect([...select.options].map((o) => o.value)).toEqual(["conv1", "conv2", "conv5"]);
    expect(select.value).toBe("conv1");
    select.value = "conv5";
    select.dispatchEvent(new Event("change"));
    expect(model.get("layer")).toBe("conv5");
    expect(model.saves.at(-1).layer).toBe("conv5");
    model.set("layers", ["a", "b"]);
    model.set("layer", "b");
    expect([...select.options].map((o) => o.value)).toEqual(["a", "b"]);
    expect(select.value).toBe("b");
  });

  it("says paging needs a kernel when no tiles come back", () => {
    vi.useFakeTimers();
    const { q, model } = mount();
    q(".cnnvis-next").click();
    expect(q(".cnnvis-page").textContent).toBe("page 2 of 3");
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS - 100);
    expect(q(".cnnvis-status").textContent).toBe("");
    vi.advanceTimersByTime(200);
    expect(q(".cnnvis-status").textContent).toBe("Paging needs a running kernel.");
    expect(q(".cnnvis-page").textContent).toBe("page 1 of 3");
    expect(q(".cnnvis-prev").disabled).toBe(true);
    expect(model.get("page")).toBe(1); // the request stays with the model
  });

  it("no note when the kernel answers in time", () => {
    vi.useFakeTimers();
    const { q, qa, model } = mount();
    q(".cnnvis-next").click();
    vi.advanceTimersByTime(1000);
    model.set("tiles", [makeTile(16), makeTile(17)]);
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS * 2);
    expect(q(".cnnvis-status").textContent).toBe("");
    expect(q(".cnnvis-page").textContent).toBe("page 2 of 3");
    expect(qa(".cnnvis-tile").map((t) => t.dataset.unit)).toEqual(["16", "17"]);
  });

  it("a late answer clears the note", () => {
    vi.useFakeTimers();
    const { q, model } = mount();
    q(".cnnvis-next").click();
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS + 1);
    expect(q(".cnnvis-status").textContent).toBe("Paging needs a running kernel.");
    model.set("tiles", [makeTile(16)]);
    expect(q(".cnnvis-status").textContent).toBe("");
    expect(q(".cnnvis-page").textContent).toBe("page 2 of 3");
  });

  it("restores the layer picker when a layer change goes unanswered", () => {
    vi.useFakeTimers();
    const { q } = mount();
    const select = q("select.cnnvis-layer");
    select.value = "conv2";
    select.dispatchEvent(new Event("change"));
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS + 1);
    expect(select.value).toBe("conv1");
    expect(q(".cnnvis-status").textContent).toBe("Switching layers needs a running kernel.");
  });
});

describe("status and progress", () => {
  it("shows status text and progress only while working", () => {
    const { q, model } = mount();
    const bar = q("progress.cnnvis-progress");
    expect(bar.hidden).toBe(true);
    model.set("status", "computing conv5…");
    model.set("progress", 0.25);
    expect(q(".cnnvis-status").textContent).toBe("computing conv5…");
    expect(bar.hidden).toBe(false);
    expect(bar.value).toBe(0.25);
    model.set("progress", 0);
    expect(bar.hidden).toBe(false);
    model.set("progress", -1);
    expect(bar.hidden).toBe(true);
  });
});

describe("cancelling a background computation", () => {
  it("shows Cancel only while the kernel computes, and sends one cancel message", () => {
    const { q, model } = mount();
    const button = q("button.cnnvis-cancel");
    expect(button.hidden).toBe(true);
    model.set("computing", true);
    expect(button.hidden).toBe(false);
    button.click();
    expect(model.sent).toEqual([{ type: "cancel" }]);
    expect(button.disabled).toBe(true);
    model.set("computing", false);
    expect(button.hidden).toBe(true);
    model.set("computing", true);
    expect(button.disabled).toBe(false);
  });

  it("a background computation answers a layer request: no 'needs a kernel' note", () => {
    vi.useFakeTimers();
    const { q, model } = mount();
    const select = q("select.cnnvis-layer");
    select.value = "conv5";
    select.dispatchEvent(new Event("change"));
    model.set("computing", true);
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS + 1);
    expect(q(".cnnvis-status").textContent).toBe("");
    expect(select.value).toBe("conv5");
  });
});

describe("object URLs and cleanup", () => {
  it("revokes the old URLs when tiles change, once the old images have loaded", async () => {
    const { model, el } = mount();
    const first = urls.create.mock.results.map((r) => r.value);
    const old = [...el.querySelectorAll("img")];
    expect(urls.revoke).not.toHaveBeenCalled();
    model.set("tiles", [makeTile(3, { count: 1 })]);
    expect(urls.revoke).not.toHaveBeenCalled(); // a revoked URL mid-load fails (ERR_FILE_NOT_FOUND)
    await finishLoading(old);
    expect(urls.revoke.mock.calls.map((c) => c[0]).sort()).toEqual([...first].sort());
    expect(urls.live.size).toBe(2);
  });

  it("cleanup revokes every URL, removes listeners and the DOM", () => {
    vi.useFakeTimers();
    const { model, q, el } = mount();
    q('.cnnvis-tile[data-unit="0"]').click();
    model.set("detail", { unit: 0, context: [pngBytes()] });
    q(".cnnvis-next").click();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    cleanup = undefined;
    expect(urls.live.size).toBe(0);
    expect(urls.revoke).toHaveBeenCalledTimes(urls.create.mock.calls.length);
    expect(model.listenerCount()).toBe(0);
    expect(el.querySelector(".cnnvis-gallery")).toBeNull();
    vi.advanceTimersByTime(KERNEL_TIMEOUT_MS * 2); // no timer fires into a removed view
    model.set("tiles", [makeTile(9)]);
    expect(urls.live.size).toBe(0);
  });
});

describe("activation maximization images", () => {
  it("shows a unit's AM images in its tile and, larger, in the detail view", () => {
    const urls = stubObjectUrls();
    const tiles = [
      { ...makeTile(0, { count: 2 }), am: [pngView(), pngView()], am_values: [7.5, 6.25] },
      makeTile(1, { count: 2 }),
    ];
    const model = fakeModel(defaults({ layers: ["conv5"], layer: "conv5", unit_count: 2, tiles }));
    const el = document.createElement("div");
    const cleanup = widget.render({ model, el });
    const [first, second] = el.querySelectorAll(".cnnvis-tile");
    expect(first.querySelectorAll("img.cnnvis-am")).toHaveLength(2);
    expect(second.querySelectorAll("img.cnnvis-am")).toHaveLength(0);
    expect(first.querySelector("img.cnnvis-am").title).toContain("7.5");
    first.click();
    const panel = el.querySelector(".cnnvis-detail");
    expect(panel.querySelectorAll("img.cnnvis-detail-am")).toHaveLength(2);
    expect([...panel.querySelectorAll("figcaption")].map((f) => f.textContent)).toContain("AM 6.25");
    cleanup();
    expect(urls.live.size).toBe(0);
  });
});
