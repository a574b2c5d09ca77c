import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "../am_explorer/index.js";
import { formatUnits, parseNumber, parseUnits, safeName, saveNames, stepLabel } from "../am_explorer/parse.js";
import { fakeModel, finishLoading, pngView, stubObjectUrls } from "./helpers.js";

function defaults(overrides = {}) {
  return {
    title: "MiniAlexNet",
    layers: ["conv1", "conv5", "fc8"],
    layer: "conv5",
    unit_count: 64,
    units: [0],
    objectives: ["channel", "neuron", "logit"],
    objective: "channel",
    presets: ["lucid", "yosinski", "simonyan"],
    preset: "lucid",
    steps: 24,
    lr: 0.05,
    l2: 0,
    tv: 0,
    blur_every: 0,
    pixel_param: false,
    n_per_unit: 1,
    diversity: 0,
    seed: 0,
    running: false,
    step: 0,
    total_steps: 24,
    images: [],
    image_units: [],
    image_labels: [],
    image_layer: "",
    image_size: 64,
    scale: 3,
    status: "",
    ...overrides,
  };
}

let urls;
let cleanup;
let host;

function mount(overrides) {
  const model = fakeModel(defaults(overrides));
  model.sent = [];
  model.send = (message) => model.sent.push({ message, saves: model.saves.length });
  host = document.createElement("div");
  document.body.append(host);
  cleanup = widget.render({ model, el: host });
  return { model, el: host, q: (s) => host.querySelector(s), qa: (s) => [...host.querySelectorAll(s)] };
}

function type(input, value) {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

beforeEach(() => {
  urls = stubObjectUrls();
});

afterEach(() => {
  cleanup?.();
  cleanup = undefined;
  host?.remove();
});

describe("parsing", () => {
  it("reads unit lists", () => {
    expect(parseUnits("0, 3,7")).toEqual({ units: [0, 3, 7] });
    expect(parseUnits(" 5  2 ; 5 ")).toEqual({ units: [5, 2] });
    expect(parseUnits("").error).toMatch(/at least one unit/);
    expect(parseUnits("1, x").error).toMatch(/"x" is not a unit/);
    expect(parseUnits("-1").error).toMatch(/not a unit/);
    expect(parseUnits("2.5").error).toMatch(/not a unit/);
    expect(parseUnits("3, 64", 64).error).toMatch(/unit 64 is out of range.*0\.\.63/);
    expect(formatUnits([0, 3, 7])).toBe("0, 3, 7");
  });

  it("reads numbers", () => {
    expect(parseNumber("0.02", "lr", { positive: true })).toEqual({ value: 0.02 });
    expect(parseNumber("0", "lr", { positive: true }).error).toMatch(/greater than 0/);
    expect(parseNumber("1.5", "steps", { integer: true }).error).toMatch(/whole number/);
    expect(parseNumber("abc", "tv").error).toMatch(/must be a number/);
    expect(parseNumber("-1", "tv", { min: 0 }).error).toMatch(/at least 0/);
  });

  it("names downloads and steps", () => {
    expect(saveNames("conv5", [3, 9])).toEqual(["am_conv5_3.png", "am_conv5_9.png"]);
    expect(saveNames("features.0", [1, 1])).toEqual(["am_features_0_1_0.png", "am_features_0_1_1.png"]);
    expect(safeName("")).toBe("output");
    expect(stepLabel(12, 512)).toBe("step 12 / 512");
  });
});

describe("controls", () => {
  it("renders the settings from the model", () => {
    const { q, qa } = mount({ units: [1, 4] });
    expect(q(".cnnvis-explorer")).not.toBeNull();
    expect(q(".cnnvis-explorer").hasAttribute("data-lm-suppress-shortcuts")).toBe(true);
    expect(q(".cnnvis-title").textContent).toBe("MiniAlexNet");
    expect(qa("select.cnnvis-am-layer option").map((o) => o.value)).toEqual(["conv1", "conv5", "fc8"]);
    expect(q("select.cnnvis-am-layer").value).toBe("conv5");
    expect(q("select.cnnvis-am-objective").value).toBe("channel");
    expect(q("select.cnnvis-am-preset").value).toBe("lucid");
    expect(q(".cnnvis-am-units").value).toBe("1, 4");
    expect(q(".cnnvis-am-steps").value).toBe("24");
    expect(q(".cnnvis-am-lr").value).toBe("0.05");
    expect(q(".cnnvis-am-step").textContent).toBe("step 0 / 24");
    expect(q(".cnnvis-am-empty")).not.toBeNull();
    expect(q(".cnnvis-explorer").style.getPropertyValue("--cnnvis-am-size")).toBe("192px");
  });

  it("Run syncs the edited settings, then sends run", () => {
    const { model, q } = mount();
    type(q(".cnnvis-am-units"), "0, 3,7");
    type(q(".cnnvis-am-steps"), "48");
    type(q(".cnnvis-am-tv"), "0.01");
    q(".cnnvis-am-run").click();
    expect(model.sent).toHaveLength(1);
    expect(model.sent[0].message).toEqual({ type: "run" });
    expect(model.sent[0].saves).toBe(1); // saved before sending
    expect(model.saves[0]).toMatchObject({ units: [0, 3, 7], steps: 48, tv: 0.01, lr: 0.05 });
  });

  it("Enter in an input runs too", () => {
    const { model, q } = mount();
    q(".cnnvis-am-units").dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(model.sent.map((s) => s.message)).toEqual([{ type: "run" }]);
  });

  it("bad units show an error and send nothing", () => {
    const { model, q } = mount();
    type(q(".cnnvis-am-units"), "0, three");
    q(".cnnvis-am-run").click();
    expect(model.sent).toHaveLength(0);
    expect(model.saves).toHaveLength(0);
    expect(q(".cnnvis-am-status").textContent).toMatch(/^error: "three" is not a unit/);
    expect(q(".cnnvis-am-status").classList.contains("cnnvis-am-error")).toBe(true);
    expect(q(".cnnvis-am-units").getAttribute("aria-invalid")).toBe("true");

    type(q(".cnnvis-am-units"), "70");
    q(".cnnvis-am-run").click();
    expect(model.sent).toHaveLength(0);
    expect(q(".cnnvis-am-status").textContent).toMatch(/unit 70 is out of range/);
  });

  it("bad numbers show an error and send nothing", () => {
    const { model, q } = mount();
    type(q(".cnnvis-am-lr"), "fast");
    q(".cnnvis-am-run").click();
    expect(model.sent).toHaveLength(0);
    expect(q(".cnnvis-am-status").textContent).toBe("error: lr must be a number");
    type(q(".cnnvis-am-lr"), "0.05");
    type(q(".cnnvis-am-diversity"), "1");
    q(".cnnvis-am-run").click();
    expect(model.sent).toHaveLength(0);
    expect(q(".cnnvis-am-status").textContent).toMatch(/diversity needs at least 2 images/);
  });

  it("Stop is disabled when not running and sends stop", () => {
    const { model, q } = mount();
    expect(q(".cnnvis-am-stop").disabled).toBe(true);
    expect(q(".cnnvis-am-run").disabled).toBe(false);
    model.set("running", true);
    expect(q(".cnnvis-am-stop").disabled).toBe(false);
    expect(q(".cnnvis-am-run").disabled).toBe(true);
    expect(q(".cnnvis-am-units").disabled).toBe(true);
    q(".cnnvis-am-stop").click();
    expect(model.sent.map((s) => s.message)).toEqual([{ type: "stop" }]);
    model.set("running", false);
    expect(q(".cnnvis-am-stop").disabled).toBe(true);
    expect(q(".cnnvis-am-run").disabled).toBe(false);
  });

  it("blur every is editable only for pixel presets", () => {
    const { model, q } = mount();
    expect(q(".cnnvis-am-blur-every").disabled).toBe(true);
    model.set("pixel_param", true);
    expect(q(".cnnvis-am-blur-every").disabled).toBe(false);
  });

  it("select changes are saved at once", () => {
    const { model, q } = mount();
    const select = q("select.cnnvis-am-preset");
    select.value = "yosinski";
    select.dispatchEvent(new Event("change"));
    expect(model.get("preset")).toBe("yosinski");
    expect(model.saves).toHaveLength(1);
    expect(model.sent).toHaveLength(0);
  });

  it("follows the kernel's settings and status", () => {
    const { model, q } = mount();
    model.set("units", [2, 5]);
    model.set("lr", 0.02);
    model.set("step", 8);
    model.set("status", "running channel of conv5");
    expect(q(".cnnvis-am-units").value).toBe("2, 5");
    expect(q(".cnnvis-am-lr").value).toBe("0.02");
    expect(q(".cnnvis-am-step").textContent).toBe("step 8 / 24");
    expect(q(".cnnvis-am-status").textContent).toBe("running channel of conv5");
    expect(q(".cnnvis-am-status").classList.contains("cnnvis-am-error")).toBe(false);
  });
});

describe("image strip", () => {
  it("shows images, replaces them and revokes the old URLs once the new ones have loaded", async () => {
    const { model, qa } = mount();
    model.set("image_layer", "conv5");
    model.set("image_units", [3, 9]);
    model.set("image_labels", ["conv5 #3", "conv5 #9"]);
    model.set("images", [pngView(), pngView()]);
    let imgs = qa("img.cnnvis-am-image");
    expect(imgs).toHaveLength(2);
    const first = imgs.map((img) => img.getAttribute("src"));
    expect(first.every((src) => urls.live.has(src))).toBe(true);
    expect(qa(".cnnvis-am-label").map((l) => l.textContent)).toEqual(["conv5 #3", "conv5 #9"]);

    model.set("images", [pngView(), pngView()]);
    imgs = qa("img.cnnvis-am-image");
    const second = imgs.map((img) => img.getAttribute("src"));
    expect(second).not.toEqual(first);
    expect(first.every((src) => urls.live.has(src))).toBe(true);
    await finishLoading(imgs);
    for (const src of first) expect(urls.revoke).toHaveBeenCalledWith(src);
    expect([...urls.live]).toEqual(second);
  });

  it("save links download the current PNG", () => {
    const { model, qa } = mount();
    model.set("image_layer", "conv5");
    model.set("image_units", [3, 9]);
    model.set("images", [pngView(), pngView()]);
    const links = qa("a.cnnvis-am-save");
    expect(links.map((a) => a.getAttribute("download"))).toEqual(["am_conv5_3.png", "am_conv5_9.png"]);
    const imgs = qa("img.cnnvis-am-image");
    expect(links.map((a) => a.getAttribute("href"))).toEqual(imgs.map((i) => i.getAttribute("src")));
    expect(links[0].textContent).toBe("Save PNG");
  });

  it("cleanup removes listeners, revokes URLs and the DOM", () => {
    const { model, el } = mount();
    model.set("image_units", [1]);
    model.set("images", [pngView()]);
    expect(urls.live.size).toBe(1);
    cleanup();
    cleanup = undefined;
    expect(urls.live.size).toBe(0);
    expect(model.listenerCount()).toBe(0);
    expect(el.querySelector(".cnnvis-explorer")).toBeNull();
  });
});
