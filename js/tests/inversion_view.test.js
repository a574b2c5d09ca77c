import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "../inversion_view/index.js";
import { describeChoice, errorText, normalizeCombination, resolveChoice, visibleImages } from "../inversion_view/data.js";
import { fakeModel, finishLoading, pngView, stubObjectUrls } from "./helpers.js";

const LAYERS = ["conv1", "conv3", "fc6"];

function makeCombination(method, perturbation, images = 2) {
  const offset = { regularized: 0, upconv: 0.5 }[method] + { none: 0, binarize: 0.25, dropout: 0.125 }[perturbation];
  return {
    method,
    perturbation,
    images: Array.from({ length: images * LAYERS.length }, () => pngView()),
    pixel_errors: Array.from({ length: images }, (_, i) => LAYERS.map((_, j) => 0.1 * (j + 1) + offset + i / 100)),
    feature_errors: Array.from({ length: images }, () => LAYERS.map((_, j) => 0.05 * (j + 1))),
  };
}

const ALL = [
  ["regularized", "none"],
  ["regularized", "binarize"],
  ["upconv", "none"],
  ["upconv", "binarize"],
  ["upconv", "dropout"],
];

function defaults(overrides = {}) {
  const images = overrides.imageCount ?? 2;
  const pairs = overrides.pairs ?? ALL;
  delete overrides.imageCount;
  delete overrides.pairs;
  return {
    title: "MiniAlexNet",
    layers: LAYERS,
    originals: Array.from({ length: images }, () => pngView()),
    combinations: pairs.map(([m, p]) => makeCombination(m, p, images)),
    method: pairs[0][0],
    perturbation: pairs[0][1],
    selected_image: 0,
    max_strips: 4,
    image_width: 64,
    image_height: 64,
    scale: 3,
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
  const pressed = (kind) => qa(`.cnnvis-inv-${kind}[aria-pressed="true"]`).map((b) => b.dataset[kind]);
  const enabled = (kind) => qa(`.cnnvis-inv-${kind}`).filter((b) => !b.disabled).map((b) => b.dataset[kind]);
  const errors = () => qa(".cnnvis-inv-strip").map((s) => [...s.querySelectorAll(".cnnvis-inv-reconstruction .cnnvis-inv-error")].map((e) => e.textContent));
  return { model, q, qa, pressed, enabled, errors };
}

beforeEach(() => {
  urls = stubObjectUrls();
});

afterEach(() => {
  cleanup?.();
  cleanup = undefined;
  host?.remove();
});

describe("data helpers", () => {
  const combos = ALL.map(([m, p]) => normalizeCombination({ method: m, perturbation: p }));

  it("resolves a wish to an existing combination", () => {
    expect(resolveChoice(combos, "upconv", "dropout")).toEqual({ method: "upconv", perturbation: "dropout" });
    expect(resolveChoice(combos, "regularized", "dropout")).toEqual({ method: "regularized", perturbation: "none" });
    const binarizedOnly = [normalizeCombination({ method: "upconv", perturbation: "binarize" })];
    expect(resolveChoice(binarizedOnly, "upconv", "none")).toEqual({ method: "upconv", perturbation: "binarize" });
    expect(resolveChoice(binarizedOnly, "regularized", "none")).toEqual({ method: "upconv", perturbation: "binarize" });
    expect(resolveChoice([], "upconv", "none")).toBeNull();
  });

  it("labels and picks what to draw", () => {
    expect(errorText(0.41234)).toBe("pixel error 0.412");
    expect(errorText(null)).toBe("pixel error –");
    expect(describeChoice({ method: "upconv", perturbation: "binarize" })).toMatch(/UpconvNet .* binarized features/);
    expect(visibleImages(3, 4, 2)).toEqual([0, 1, 2]);
    expect(visibleImages(6, 4, 5)).toEqual([5]);
    expect(visibleImages(6, 4, 99)).toEqual([5]);
    expect(normalizeCombination({ method: "upconv" })).toMatchObject({ perturbation: "none", images: [], pixel_errors: [] });
  });
});

describe("rendering", () => {
  it("draws a strip per image: the original, then one labelled reconstruction per layer", () => {
    const { q, qa, errors } = mount();
    expect(q(".cnnvis-inversion")).not.toBeNull();
    expect(q(".cnnvis-title").textContent).toBe("MiniAlexNet");
    const strips = qa(".cnnvis-inv-strip");
    expect(strips).toHaveLength(2);
    expect(qa("img.cnnvis-inv-image")).toHaveLength(2 * (1 + LAYERS.length));
    expect(qa("img.cnnvis-inv-image[data-kind='original']")).toHaveLength(2);
    expect(qa("img.cnnvis-inv-image").every((img) => img.src.startsWith("blob:test/"))).toBe(true);
    const labels = [...strips[0].querySelectorAll(".cnnvis-inv-layer")].map((s) => s.textContent);
    expect(labels).toEqual(["original", ...LAYERS]);
    expect(errors()[0]).toEqual(["pixel error 0.100", "pixel error 0.200", "pixel error 0.300"]);
    expect(errors()[1][0]).toBe("pixel error 0.110");
    const fc6 = strips[1].querySelector("img[data-layer='fc6']");
    expect(fc6.alt).toBe("image 2, reconstructed from fc6, pixel error 0.310");
    expect(fc6.title).toMatch(/feature error 0.150/);
    // 2 originals + 2 x 3 reconstructions of the shown combination
    expect(urls.live.size).toBe(8);
    expect(q(".cnnvis-inversion").style.getPropertyValue("--cnnvis-inv-width")).toBe("192px");
    expect(q(".cnnvis-inv-caption").textContent).toMatch(/regularized optimization .* each layer's features/);
  });

  it("presses the toggles of the shown combination and disables the missing ones", () => {
    const { pressed, enabled } = mount({ pairs: [["upconv", "none"], ["upconv", "binarize"]] });
    expect(pressed("method")).toEqual(["upconv"]);
    expect(enabled("method")).toEqual(["upconv"]);
    expect(pressed("perturbation")).toEqual(["none"]);
    expect(enabled("perturbation")).toEqual(["none", "binarize"]);
  });

  it("a toggle sets the traits, saves them and swaps the strip", async () => {
    const { model, q, qa, pressed, enabled, errors } = mount();
    expect(enabled("perturbation")).toEqual(["none", "binarize"]);
    const before = qa("img.cnnvis-inv-image[data-kind='reconstruction']").map((i) => i.src);
    const old = qa("img");
    q(".cnnvis-inv-perturbation[data-perturbation='binarize']").click();
    expect(model.get("perturbation")).toBe("binarize");
    expect(model.saves.at(-1)).toMatchObject({ method: "regularized", perturbation: "binarize" });
    expect(pressed("perturbation")).toEqual(["binarize"]);
    expect(errors()[0]).toEqual(["pixel error 0.350", "pixel error 0.450", "pixel error 0.550"]);
    const after = qa("img.cnnvis-inv-image[data-kind='reconstruction']").map((i) => i.src);
    expect(after).toHaveLength(6);
    expect(after.some((src) => before.includes(src))).toBe(false);
    expect(before.every((src) => urls.live.has(src))).toBe(true); // still loading: kept
    await finishLoading(old);
    expect(before.every((src) => !urls.live.has(src))).toBe(true); // the old strip's URLs are revoked

    // UpconvNet has dropout; switching back to regularized falls back to none (regularized has no dropout)
    q(".cnnvis-inv-method[data-method='upconv']").click();
    expect([model.get("method"), model.get("perturbation")]).toEqual(["upconv", "binarize"]);
    expect(enabled("perturbation")).toEqual(["none", "binarize", "dropout"]);
    q(".cnnvis-inv-perturbation[data-perturbation='dropout']").click();
    expect(errors()[0][0]).toBe("pixel error 0.725");
    q(".cnnvis-inv-method[data-method='regularized']").click();
    expect([model.get("method"), model.get("perturbation")]).toEqual(["regularized", "none"]);
    expect(pressed("perturbation")).toEqual(["none"]);
    expect(enabled("perturbation")).toEqual(["none", "binarize"]);
  });

  it("a disabled toggle does nothing", () => {
    const { model, q } = mount();
    const dropout = q(".cnnvis-inv-perturbation[data-perturbation='dropout']");
    expect(dropout.disabled).toBe(true);
    expect(dropout.title).toBe("No dropout result given");
    const saves = model.saves.length;
    dropout.click();
    dropout.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.saves.length).toBe(saves);
    expect(model.get("perturbation")).toBe("none");
  });

  it("follows the kernel's changes", () => {
    const { model, pressed, errors } = mount();
    model.set("method", "upconv");
    expect(pressed("method")).toEqual(["upconv"]);
    expect(errors()[0][0]).toBe("pixel error 0.600");
    model.set("title", "<b>x</b>");
    expect(host.querySelector(".cnnvis-title").textContent).toBe("<b>x</b>");
    expect(host.querySelector(".cnnvis-title b")).toBeNull();
  });

  it("with many images, shows one strip and a picker of the originals", () => {
    const { model, q, qa } = mount({ imageCount: 6 });
    expect(qa(".cnnvis-inv-pick")).toHaveLength(6);
    expect(qa(".cnnvis-inv-strip").map((s) => s.dataset.image)).toEqual(["0"]);
    expect(qa(".cnnvis-inv-pick[aria-pressed='true']").map((b) => b.dataset.image)).toEqual(["0"]);
    qa(".cnnvis-inv-pick")[4].click();
    expect(model.get("selected_image")).toBe(4);
    expect(qa(".cnnvis-inv-strip").map((s) => s.dataset.image)).toEqual(["4"]);
    expect(q(".cnnvis-inv-strip").getAttribute("aria-label")).toBe("image 5");
    expect(qa(".cnnvis-inv-pick[aria-pressed='true']").map((b) => b.dataset.image)).toEqual(["4"]);
  });

  it("writes layer names as text, and caps large images' size", () => {
    const { q } = mount({ layers: ["<img src=x onerror=alert(1)>", "b", "c"], image_width: 224, image_height: 224 });
    expect(q(".cnnvis-inv-strip .cnnvis-inv-reconstruction .cnnvis-inv-layer").textContent).toBe("<img src=x onerror=alert(1)>");
    expect(host.querySelectorAll("img:not(.cnnvis-inv-image)")).toHaveLength(0);
    expect(q(".cnnvis-inversion").style.getPropertyValue("--cnnvis-inv-width")).toBe("256px");
  });
});

describe("cleanup", () => {
  it("removes its model listeners, its click listener and revokes every URL", () => {
    const { model, q } = mount({ imageCount: 6 });
    const button = q(".cnnvis-inv-method[data-method='upconv']");
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup();
    cleanup = undefined;
    expect(model.listenerCount()).toBe(0);
    expect(urls.live.size).toBe(0);
    expect(host.querySelector(".cnnvis-inversion")).toBeNull();
    const saves = model.saves.length;
    button.click();
    expect(model.saves.length).toBe(saves);
  });
});
