import { describe, expect, it } from "vitest";
import { OTHER, SHOWN, lineStyle, linkLines } from "../inversion_view/line_link.js";
import { fakeModel } from "./helpers.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const KEYS = [["regularized", "none"], ["regularized", "binarize"], ["upconv", "none"]];

function lineModel() {
  const state = { stroke_width: 2, opacities: [1] };
  return { get: (n) => state[n], set: (n, v) => { state[n] = v; }, save_changes() {} };
}

function linked(refs = ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]) {
  const lines = { a: lineModel(), b: lineModel(), c: lineModel() };
  const model = fakeModel({ method: "regularized", perturbation: "none", chart_lines: refs, chart_keys: KEYS,
                            styles_chart: false });
  model.widget_manager = { get_model: async (id) => lines[id] ?? Promise.reject(new Error("none")) };
  return { lines, model, stop: linkLines(model) };
}

const widths = (lines) => ["a", "b", "c"].map((id) => lines[id].get("stroke_width"));

describe("the inversion chart's lines", () => {
  it("draws the combination shown thick", () => {
    expect(lineStyle(["upconv", "none"], ["upconv", "none"])).toBe(SHOWN);
    expect(lineStyle(["upconv", "none"], ["upconv", "dropout"])).toBe(OTHER);
  });

  it("follow the toggles in the browser and tell the kernel so", async () => {
    const { lines, model } = linked();
    await flush();
    expect(model.get("styles_chart")).toBe(true);
    expect(widths(lines)).toEqual([4, 1.5, 1.5]);
    model.set("perturbation", "binarize");
    expect(widths(lines)).toEqual([1.5, 4, 1.5]);
    expect(lines.b.get("opacities")).toEqual([1]);
    expect(lines.a.get("opacities")).toEqual([0.4]);
    model.set("method", "upconv");
    model.set("perturbation", "none");
    expect(widths(lines)).toEqual([1.5, 1.5, 4]);
  });

  it("leave the lines to the kernel when one cannot be found, and stop when asked", async () => {
    const broken = linked(["IPY_MODEL_a", "IPY_MODEL_missing"]);
    broken.model.widget_manager.get_model = async (id) => (id === "a" ? broken.lines.a : null);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // its retries run out
    expect(broken.model.get("styles_chart")).toBe(false);
    const { lines, model, stop } = linked();
    await flush();
    stop();
    model.set("perturbation", "binarize");
    expect(widths(lines)).toEqual([4, 1.5, 1.5]);
  }, 10_000);
});
