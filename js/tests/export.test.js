import { afterEach, describe, expect, it, vi } from "vitest";

// Lumino's drag and drop (under @jupyter-widgets/base) subclasses DragEvent, which jsdom lacks.
vi.hoisted(() => {
  globalThis.DragEvent ??= class DragEvent extends MouseEvent {};
});
import * as base from "@jupyter-widgets/base";
import { ManagerBase } from "@jupyter-widgets/base-manager";
import * as anywidget from "../export/anywidget.js";
import { AnyModel, AnyView, injectCss, importSource, modelAdapter, widgetDefinition } from "../export/anywidget.js";
import { readState, renderPage, settled, viewModelId } from "../export/render.js";
import gallery from "../neuron_gallery/index.js";
import { PNG_BASE64, pngBytes, stubObjectUrls } from "./helpers.js";

const TINY_ESM = 'export default { render({ model, el }) { el.textContent = model.get("x"); } };';

// Evaluates module source for real, through a data: URL (Node can import those).
const dataUrlImport = (esm) => import(/* @vite-ignore */ `data:text/javascript;charset=utf-8,${encodeURIComponent(esm)}`);

// A widget manager with html-manager's model and view plumbing, minus its bundled front ends:
// base's own classes and the export bundle's anywidget; views are appended to the output element.
class TestManager extends ManagerBase {
  async loadClass(className, moduleName) {
    const module = { "@jupyter-widgets/base": base, anywidget }[moduleName];
    if (!module?.[className]) throw new Error(`no ${className} in ${moduleName}`);
    return module[className];
  }
  _get_comm_info() {
    return Promise.resolve({});
  }
  _create_comm() {
    return Promise.resolve({ on_close() {}, on_msg() {}, close() {}, send() {} });
  }
  async display_view(view, el) {
    el.append(view.el);
  }
}

function page(models, viewIds, { before = "" } = {}) {
  const state = { version_major: 2, version_minor: 0, state: models };
  const views = viewIds
    .map(
      (id) =>
        `<div class="out">${before}<script type="application/vnd.jupyter.widget-view+json">${JSON.stringify({
          version_major: 2,
          version_minor: 0,
          model_id: id,
        })}</script></div>`,
    )
    .join("\n");
  document.head.innerHTML = "";
  document.body.innerHTML = `${views}<script type="application/vnd.jupyter.widget-state+json">${JSON.stringify(
    state,
  )}</script>`;
}

function anywidgetModel(state, buffers) {
  return {
    model_name: "AnyModel",
    model_module: "anywidget",
    model_module_version: "~0.11.*",
    state: {
      _model_name: "AnyModel",
      _model_module: "anywidget",
      _view_name: "AnyView",
      _view_module: "anywidget",
      _view_module_version: "~0.11.*",
      ...state,
    },
    ...(buffers ? { buffers } : {}),
  };
}

const outputs = () => [...document.querySelectorAll(".cnnvis-export-view")];

afterEach(() => {
  AnyModel.load = async (esm) => widgetDefinition(await importSource(esm));
  document.head.innerHTML = "";
  document.body.innerHTML = "";
  delete document.documentElement.dataset.cnnvisWidgets;
  vi.restoreAllMocks();
});

describe("readState and viewModelId", () => {
  it("merges every state script and reads view scripts", () => {
    document.body.innerHTML = `
      <script type="application/vnd.jupyter.widget-state+json">{"version_major":2,"version_minor":0,"state":{"a":{"x":1}}}</script>
      <script type="application/vnd.jupyter.widget-state+json">{"version_major":2,"version_minor":0,"state":{"b":{"x":2}}}</script>
      <script type="application/vnd.jupyter.widget-view+json">{"model_id":"a"}</script>`;
    expect(Object.keys(readState(document).state)).toEqual(["a", "b"]);
    expect(viewModelId(document.querySelector('script[type$="view+json"]'))).toBe("a");
  });

  it("logs unreadable state and gives null without any", () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    document.body.innerHTML = '<script type="application/vnd.jupyter.widget-state+json">{oops</script>';
    expect(readState(document)).toBeNull();
    expect(error).toHaveBeenCalled();
    expect(viewModelId({ textContent: "not json" })).toBeNull();
  });
});

describe("renderPage with a fake manager", () => {
  function fakeManager({ failOn = null, children = [] } = {}) {
    return {
      set_state: vi.fn(async (state) => Object.keys(state.state).map((model_id) => ({ model_id }))),
      create_view: vi.fn(async (model) => {
        if (model.model_id === failOn) throw new Error("no such view class");
        const el = document.createElement("span");
        el.textContent = `view of ${model.model_id}`;
        return { el, children_views: { views: children } };
      }),
      display_view: vi.fn(async (view, el) => el.append(view.el)),
    };
  }

  it("draws each view where its script is and marks outputs and the page", async () => {
    page({ a: {}, b: {} }, ["a", "b", "a"], { before: '<img class="jupyter-widget" src="data:,">' });
    const manager = fakeManager();
    const counts = await renderPage(document, { createManager: () => manager });
    expect(counts).toEqual({ rendered: 3, partial: 0, missing: 0, error: 0 });
    expect(outputs().map((o) => [o.textContent, o.dataset.cnnvisRendered])).toEqual([
      ["view of a", "true"],
      ["view of b", "true"],
      ["view of a", "true"],
    ]);
    for (const out of outputs()) expect(out.nextElementSibling.type).toBe("application/vnd.jupyter.widget-view+json");
    expect(document.querySelector("img.jupyter-widget")).toBeNull(); // the static snapshot gave way
    expect(document.documentElement.dataset.cnnvisWidgets).toBe("done");
    expect(manager.set_state).toHaveBeenCalledTimes(1);
    // a second run leaves the drawn outputs alone
    expect(await renderPage(document, { createManager: () => manager })).toEqual({ rendered: 0, partial: 0, missing: 0, error: 0 });
    expect(outputs()).toHaveLength(3);
  });

  it("notes a view that fails and a widget whose state was not saved", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    page({ a: {}, bad: {} }, ["a", "bad", "gone"]);
    const counts = await renderPage(document, { createManager: () => fakeManager({ failOn: "bad" }) });
    expect(counts).toEqual({ rendered: 1, partial: 0, missing: 1, error: 1 });
    const [ok, bad, gone] = outputs();
    expect(ok.dataset.cnnvisRendered).toBe("true");
    expect(bad.dataset.cnnvisRendered).toBe("error");
    expect(bad.textContent).toBe("This widget could not be rendered: no such view class");
    expect(gone.dataset.cnnvisRendered).toBe("missing");
    expect(gone.textContent).toMatch(/closed before the notebook was saved/);
    expect(error).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it("notes every view when the state cannot be read", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    page({ a: {} }, ["a", "a"]);
    const manager = { set_state: async () => Promise.reject(new Error("Unsupported widget state format")) };
    expect((await renderPage(document, { createManager: () => manager })).error).toBe(2);
    expect(outputs().map((o) => o.textContent)).toEqual(
      Array(2).fill("The saved widget state could not be read: Unsupported widget state format"),
    );
    expect(error).toHaveBeenCalled();
  });

  it("marks an output partial when a nested view fails", async () => {
    page({ a: {} }, ["a"]);
    const failing = Promise.reject(new Error("child"));
    failing.catch(() => {});
    const counts = await renderPage(document, { createManager: () => fakeManager({ children: [failing] }) });
    expect(counts.partial).toBe(1);
    expect(outputs()[0].dataset.cnnvisRendered).toBe("partial");
  });
});

describe("settled", () => {
  it("waits for box children, figure marks and axes, nested", async () => {
    let release;
    const late = new Promise((resolve) => (release = resolve));
    const leaf = {};
    const box = { children_views: { views: [Promise.resolve({ mark_views: { views: [late] } })] } };
    let done = false;
    const waiting = settled(box).then((failed) => {
      done = true;
      return failed;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done).toBe(false);
    release(leaf);
    expect(await waiting).toBe(0);
    const failing = Promise.reject(new Error("x"));
    failing.catch(() => {});
    expect(await settled({ axis_views: { views: [failing, Promise.resolve({})] } })).toBe(1);
  });
});

describe("anywidget front end", () => {
  it("reads every form of widget module", async () => {
    const render = () => {};
    expect((await widgetDefinition({ default: { render } })).render).toBe(render);
    expect((await widgetDefinition({ default: async () => ({ render }) })).render).toBe(render);
    expect((await widgetDefinition({ render })).render).toBe(render);
    await expect(widgetDefinition({})).rejects.toThrow(/no default export/);
  });

  it("imports module source through a blob URL", async () => {
    const urls = stubObjectUrls();
    // Node cannot import blob: URLs; hand back an equivalent data: URL instead.
    urls.create.mockImplementation((blob) => {
      expect(blob.type).toBe("text/javascript");
      return `data:text/javascript;charset=utf-8,${encodeURIComponent(TINY_ESM)}`;
    });
    const mod = await importSource(TINY_ESM);
    expect(typeof mod.default.render).toBe("function");
    expect(urls.create).toHaveBeenCalledTimes(1);
    expect(urls.revoke).toHaveBeenCalledTimes(1);
  });

  it("injects a widget's CSS once per widget id", () => {
    injectCss(".a { color: red }", "w1");
    injectCss(".a { color: blue }", "w1");
    injectCss(".b {}", "w2");
    injectCss("  ", "w3");
    expect([...document.head.querySelectorAll("style")].map((s) => s.textContent)).toEqual([".a { color: blue }", ".b {}"]);
  });

  it("scopes an adapter's listeners to its context", () => {
    const model = new base.WidgetModel({}, { model_id: "m", widget_manager: {} });
    const seen = [];
    const one = modelAdapter(model, {});
    const two = modelAdapter(model, {});
    one.on("change:x", () => seen.push("one"));
    two.on("change:x", () => seen.push("two"));
    one.set("x", 1);
    one.off();
    two.set("x", 2);
    expect(seen).toEqual(["one", "two", "two"]);
    expect(two.get("x")).toBe(2);
    expect(() => two.save_changes()).not.toThrow(); // no comm: nothing is sent
  });

  it("renders saved anywidget state: buffers, _css, initialize once per model, render per view", async () => {
    const calls = [];
    AnyModel.load = vi.fn(async () => ({
      initialize: ({ model }) => calls.push(["initialize", model.get("label")]),
      render: ({ model, el }) => {
        const image = model.get("tiles")[0].images[1];
        calls.push(["render", image instanceof DataView, image.byteLength]);
        el.textContent = model.get("label");
        return () => calls.push(["cleanup"]);
      },
    }));
    page(
      {
        m1: anywidgetModel(
          { label: "one", _esm: "source", _css: ".x { color: red }", tiles: [{ images: [null, null] }] },
          [{ path: ["tiles", 0, "images", 1], data: PNG_BASE64, encoding: "base64" }],
        ),
      },
      ["m1", "m1"],
    );
    const manager = new TestManager();
    expect((await renderPage(document, { createManager: () => manager })).rendered).toBe(2);
    expect(AnyModel.load).toHaveBeenCalledWith("source");
    expect(calls).toEqual([
      ["initialize", "one"],
      ["render", true, pngBytes().length],
      ["render", true, pngBytes().length],
    ]);
    expect(outputs().map((n) => n.textContent)).toEqual(["one", "one"]);
    expect([...document.head.querySelectorAll("style")].map((s) => s.textContent)).toEqual([".x { color: red }"]);
    const model = await manager.get_model("m1");
    const views = await Promise.all(Object.values(model.views));
    views[0].remove();
    expect(calls.at(-1)).toEqual(["cleanup"]);
  });

  it("evaluates real module source", async () => {
    AnyModel.load = async (esm) => widgetDefinition(await dataUrlImport(esm));
    page({ m1: anywidgetModel({ x: "hello from state", _esm: TINY_ESM }) }, ["m1"]);
    await renderPage(document, { createManager: () => new TestManager() });
    expect(outputs()[0].textContent).toBe("hello from state");
  });

  it("shows a note in place of a view whose module fails", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    AnyModel.load = async () => widgetDefinition({});
    page({ m1: anywidgetModel({ _esm: "bad" }) }, ["m1"]);
    await renderPage(document, { createManager: () => new TestManager() });
    expect(outputs()[0].querySelector(".cnnvis-embed-note").textContent).toMatch(/could not be rendered/);
    expect(error).toHaveBeenCalled();
  });

  it("renders the neuron gallery from saved state, clicks included", async () => {
    stubObjectUrls();
    AnyModel.load = async () => widgetDefinition({ default: gallery });
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
    const state = {
      _esm: "gallery", title: "saved", layers: ["conv1"], layer: "conv1", unit_count: 2, page: 0, page_size: 16,
      tiles, tile_size: 40, selected_unit: -1, detail: null, status: "", progress: -1,
    };
    page({ g: anywidgetModel(state, buffers) }, ["g"]);
    await renderPage(document, { createManager: () => new TestManager() });
    const root = document.querySelector(".cnnvis-export-view .cnnvis-gallery");
    expect(root.querySelectorAll(".cnnvis-tile")).toHaveLength(2);
    expect(root.querySelectorAll("img.cnnvis-crop")).toHaveLength(4);
    root.querySelector('.cnnvis-tile[data-unit="1"]').click();
    const values = [...root.querySelectorAll(".cnnvis-detail .cnnvis-detail-value")].map((n) => n.textContent);
    expect(values).toEqual(["3.14", "2.50"]);
  });
});
