import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createStaticModel,
  decodeBase64,
  importModule,
  placeBuffers,
  readModels,
  renderAll,
} from "../export/index.js";
import gallery from "../neuron_gallery/index.js";
import { PNG_BASE64, pngBytes, stubObjectUrls } from "./helpers.js";

const TINY_ESM = 'export default { render({ model, el }) { el.textContent = model.get("x"); } };';

// Evaluates module source for real, through a data: URL (Node can import those).
const dataUrlLoader = (esm) =>
  import(/* @vite-ignore */ `data:text/javascript;charset=utf-8,${encodeURIComponent(esm)}`);

function page(models, viewIds) {
  const state = { version_major: 2, version_minor: 0, state: models };
  const views = viewIds
    .map(
      (id) =>
        `<div class="out"><script type="application/vnd.jupyter.widget-view+json">${JSON.stringify({
          version_major: 2,
          version_minor: 0,
          model_id: id,
        })}</script></div>`,
    )
    .join("\n");
  document.head.innerHTML = "";
  document.body.innerHTML = `<script type="application/vnd.jupyter.widget-state+json">${JSON.stringify(
    state,
  )}</script>${views}`;
}

function anywidgetModel(state, buffers) {
  return {
    model_name: "AnyModel",
    model_module: "anywidget",
    model_module_version: "~0.9.*",
    state: { _model_name: "AnyModel", _view_name: "AnyView", ...state },
    ...(buffers ? { buffers } : {}),
  };
}

afterEach(() => {
  document.head.innerHTML = "";
  document.body.innerHTML = "";
});

describe("decodeBase64", () => {
  it("returns the bytes as a DataView", () => {
    const view = decodeBase64("AAEC/w==");
    expect(view).toBeInstanceOf(DataView);
    expect(Array.from(new Uint8Array(view.buffer))).toEqual([0, 1, 2, 255]);
  });

  it("decodes a PNG exactly", () => {
    const view = decodeBase64(PNG_BASE64);
    expect(Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))).toEqual(Array.from(pngBytes()));
    expect(view.getUint32(0)).toBe(0x89504e47); // \x89PNG
  });

  it("handles empty input and line breaks", () => {
    expect(decodeBase64("").byteLength).toBe(0);
    expect(decodeBase64("AAEC\n/w==").byteLength).toBe(4);
  });
});

describe("placeBuffers", () => {
  it("puts DataViews at nested paths", () => {
    const state = {
      tiles: [
        { unit: 0, images: [null, null, null], filter: null },
        { unit: 1, images: [], filter: null },
      ],
      other: 1,
    };
    const out = placeBuffers(state, [
      { path: ["tiles", 0, "images", 2], data: "AAE=", encoding: "base64" },
      { path: ["tiles", 1, "filter"], data: "/w==", encoding: "base64" },
      { path: ["detail", "context", 0], data: "Ag==", encoding: "base64" },
    ]);
    expect(out).toBe(state);
    const image = state.tiles[0].images[2];
    expect(image).toBeInstanceOf(DataView);
    expect([image.getUint8(0), image.getUint8(1)]).toEqual([0, 1]);
    expect(state.tiles[0].images[0]).toBeNull();
    expect(state.tiles[1].filter.getUint8(0)).toBe(255);
    expect(Array.isArray(state.detail.context)).toBe(true);
    expect(state.detail.context[0].getUint8(0)).toBe(2);
    expect(state.other).toBe(1);
  });

  it("accepts hex and raw binary buffers", () => {
    const state = placeBuffers({}, [
      { path: ["a"], data: "00ff10", encoding: "hex" },
      { path: ["b"], data: new Uint8Array([7, 8]).buffer },
    ]);
    expect(Array.from(new Uint8Array(state.a.buffer))).toEqual([0, 255, 16]);
    expect(state.b.getUint8(1)).toBe(8);
  });
});

describe("createStaticModel", () => {
  it("gets, sets and notifies listeners", () => {
    const model = createStaticModel({ x: 1, y: "a" });
    const onX = vi.fn();
    const onAny = vi.fn();
    model.on("change:x", onX);
    model.on("change", onAny);
    expect(model.get("x")).toBe(1);
    model.set("x", 2);
    expect(model.get("x")).toBe(2);
    expect(onX).toHaveBeenCalledTimes(1);
    expect(onX).toHaveBeenCalledWith(model, 2);
    expect(onAny).toHaveBeenCalledTimes(1);
    model.set("x", 2); // unchanged: no event
    expect(onX).toHaveBeenCalledTimes(1);
    model.set("y", "b");
    expect(onX).toHaveBeenCalledTimes(1);
    model.off("change:x", onX);
    model.set("x", 3);
    expect(onX).toHaveBeenCalledTimes(1);
    expect(model.get("x")).toBe(3);
  });

  it("does not touch the state it was given, and has no-op kernel calls", async () => {
    const state = { x: 1 };
    const model = createStaticModel(state);
    model.set("x", 5);
    expect(state.x).toBe(1);
    expect(model.save_changes()).toBeUndefined();
    expect(model.send({ any: "message" })).toBeUndefined();
    await expect(model.widget_manager.get_model("abc")).rejects.toThrow(/abc/);
  });
});

describe("readModels", () => {
  it("reads models from the state script", () => {
    page({ m1: anywidgetModel({ x: "hi" }) }, ["m1"]);
    const models = readModels(document);
    expect(Object.keys(models)).toEqual(["m1"]);
    expect(models.m1.state.x).toBe("hi");
  });
});

describe("renderAll", () => {
  it("renders an anywidget view from its _esm after the view script", async () => {
    page({ m1: anywidgetModel({ x: "hello from state", _esm: TINY_ESM }) }, ["m1"]);
    const count = await renderAll(document, { loadModule: dataUrlLoader });
    expect(count).toBe(1);
    const script = document.querySelector('script[type="application/vnd.jupyter.widget-view+json"]');
    const el = script.nextElementSibling;
    expect(el.className).toBe("cnnvis-embed");
    expect(el.textContent).toBe("hello from state");
  });

  it("imports _esm through a blob URL by default", async () => {
    const urls = stubObjectUrls();
    // Node cannot import blob: URLs; hand back an equivalent data: URL instead.
    urls.create.mockImplementation((blob) => {
      expect(blob.type).toBe("text/javascript");
      return `data:text/javascript;charset=utf-8,${encodeURIComponent(TINY_ESM)}`;
    });
    const mod = await importModule(TINY_ESM);
    expect(typeof mod.default.render).toBe("function");
    expect(urls.create).toHaveBeenCalledTimes(1);
    expect(urls.revoke).toHaveBeenCalledTimes(1);
  });

  it("passes decoded buffers, adds _css, calls initialize once per model and renders every view", async () => {
    const calls = [];
    const def = {
      initialize: ({ model }) => calls.push(["initialize", model.get("label")]),
      render: ({ model, el }) => {
        const image = model.get("tiles")[0].images[1];
        calls.push(["render", image instanceof DataView, image.byteLength]);
        el.textContent = model.get("label");
      },
    };
    const loadModule = vi.fn(async () => ({ default: def }));
    page(
      {
        m1: anywidgetModel(
          { label: "one", _esm: "source", _css: ".x { color: red }", tiles: [{ images: [null, null] }] },
          [{ path: ["tiles", 0, "images", 1], data: PNG_BASE64, encoding: "base64" }],
        ),
      },
      ["m1", "m1"],
    );
    expect(await renderAll(document, { loadModule })).toBe(2);
    expect(loadModule).toHaveBeenCalledTimes(1);
    expect(loadModule).toHaveBeenCalledWith("source");
    expect(calls).toEqual([
      ["initialize", "one"],
      ["render", true, pngBytes().length],
      ["render", true, pngBytes().length],
    ]);
    expect([...document.querySelectorAll(".cnnvis-embed")].map((n) => n.textContent)).toEqual(["one", "one"]);
    expect([...document.head.querySelectorAll("style")].map((s) => s.textContent)).toEqual([".x { color: red }"]);
    expect(await renderAll(document, { loadModule })).toBe(0); // already rendered views are skipped
  });

  it("supports a default export that is a factory function", async () => {
    page({ m1: anywidgetModel({ x: "made", _esm: "s" }) }, ["m1"]);
    const loadModule = async () => ({
      default: async () => ({ render: ({ model, el }) => (el.textContent = model.get("x")) }),
    });
    await renderAll(document, { loadModule });
    expect(document.querySelector(".cnnvis-embed").textContent).toBe("made");
  });

  it("notes that other widgets need a kernel", async () => {
    page(
      { s1: { model_name: "IntSliderModel", model_module: "@jupyter-widgets/controls", state: {} } },
      ["s1"],
    );
    expect(await renderAll(document, { loadModule: vi.fn() })).toBe(0);
    const note = document.querySelector(".cnnvis-embed-note");
    expect(note.textContent).toBe("This widget needs a live kernel (model: IntSliderModel).");
  });

  it("shows an error note when a module fails", async () => {
    page({ m1: anywidgetModel({ _esm: "bad" }) }, ["m1"]);
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    await renderAll(document, { loadModule: async () => ({}) });
    expect(document.querySelector(".cnnvis-embed").textContent).toMatch(/could not be rendered/);
    error.mockRestore();
  });

  it("renders the neuron gallery from saved state with no kernel", async () => {
    stubObjectUrls();
    const tiles = [0, 1].map((unit) => ({
      unit,
      label: `unit ${unit}`,
      values: [3.14159, 2.5],
      image_indices: [10, 11],
      images: [null, null],
      filter: null,
      flags: [],
    }));
    const buffers = [];
    tiles.forEach((_, t) =>
      [0, 1].forEach((i) => buffers.push({ path: ["tiles", t, "images", i], data: PNG_BASE64, encoding: "base64" })),
    );
    page(
      {
        g: anywidgetModel(
          {
            _esm: "gallery",
            title: "saved",
            layers: ["conv1"],
            layer: "conv1",
            unit_count: 2,
            page: 0,
            page_size: 16,
            tiles,
            tile_size: 40,
            selected_unit: -1,
            detail: null,
            status: "",
            progress: -1,
          },
          buffers,
        ),
      },
      ["g"],
    );
    await renderAll(document, { loadModule: async () => ({ default: gallery }) });
    const root = document.querySelector(".cnnvis-embed .cnnvis-gallery");
    expect(root.querySelectorAll(".cnnvis-tile")).toHaveLength(2);
    expect(root.querySelectorAll("img.cnnvis-crop")).toHaveLength(4);
    root.querySelector('.cnnvis-tile[data-unit="1"]').click();
    const values = [...root.querySelectorAll(".cnnvis-detail .cnnvis-detail-value")].map((n) => n.textContent);
    expect(values).toEqual(["3.14", "2.50"]);
  });
});

describe("auto-run", () => {
  it("renders on import when the page carries widget state", async () => {
    page({ m1: anywidgetModel({ x: "auto", _esm: TINY_ESM }) }, ["m1"]);
    const urls = stubObjectUrls();
    urls.create.mockImplementation(() => `data:text/javascript;charset=utf-8,${encodeURIComponent(TINY_ESM)}`);
    vi.resetModules();
    await import("../export/index.js");
    await vi.waitFor(() => expect(document.querySelector(".cnnvis-embed")?.textContent).toBe("auto"));
  });

  it("does nothing on import without widget state", async () => {
    document.body.innerHTML = '<script type="application/vnd.jupyter.widget-view+json">{"model_id":"m1"}</script>';
    vi.resetModules();
    await import("../export/index.js");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(document.querySelector(".cnnvis-embed")).toBeNull();
  });
});
