import { describe, expect, it } from "vitest";
import { barOpacities, linkChart, referencedId, toggledCategory } from "../dissection_viewer/chart_link.js";
import { fakeModel } from "./helpers.js";

const CATEGORIES = ["color", "object", "part"];
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

// The bars: like bqplot's Backbone BarsModel (listeners with a context), counting its saves.
function barsModel() {
  const state = { selected: null, opacities: [1, 1, 1] };
  let listeners = [];
  return {
    saves: 0,
    get: (name) => state[name],
    set(name, value) {
      state[name] = value;
      for (const l of listeners.filter((l) => l.event === `change:${name}`)) l.callback(this, value);
    },
    on: (event, callback, context) => listeners.push({ event, callback, context }),
    off: (event, callback, context) => (listeners = listeners.filter((l) => l.context !== context)),
    save_changes() {
      this.saves += 1;
    },
  };
}

function linked({ ref = "IPY_MODEL_bars", category = "" } = {}) {
  const bars = barsModel();
  const model = fakeModel({ categories: CATEGORIES, category, page: 2, chart_bars: ref, handles_bar_clicks: false });
  model.widget_manager = { get_model: async (id) => (id === "bars" ? bars : Promise.reject(new Error("none"))) };
  const stop = linkChart(model);
  return { bars, model, stop };
}

// What bqplot's Bars view does on a click with the "select" interaction.
const click = (bars, index) => bars.set("selected", new Uint32Array([index]));

describe("chart link helpers", () => {
  it("toggles the category and fades the other bars", () => {
    expect(toggledCategory(CATEGORIES, "", 2)).toBe("part");
    expect(toggledCategory(CATEGORIES, "part", 2)).toBe("");
    expect(toggledCategory(CATEGORIES, "part", 0)).toBe("color");
    expect(toggledCategory(CATEGORIES, "", 9)).toBeNull();
    expect(barOpacities(CATEGORIES, "")).toEqual([1, 1, 1]);
    expect(barOpacities(CATEGORIES, "object")).toEqual([0.3, 1, 0.3]);
    expect(referencedId("IPY_MODEL_abc")).toBe("abc");
    expect(referencedId(null)).toBeNull();
  });
});

describe("linkChart", () => {
  it("filters by a clicked bar, clears the selection, and toggles back on a second click", async () => {
    const { bars, model } = linked();
    await flush();
    expect(model.get("handles_bar_clicks")).toBe(true);
    click(bars, 2);
    expect([model.get("category"), model.get("page")]).toEqual(["part", 0]);
    expect(bars.get("opacities")).toEqual([0.3, 0.3, 1]);
    await flush();
    expect(bars.get("selected")).toBeNull(); // the same bar can be clicked again
    click(bars, 2);
    expect(model.get("category")).toBe("");
    expect(bars.get("opacities")).toEqual([1, 1, 1]);
    expect(model.saves.length).toBeGreaterThanOrEqual(3);
  });

  it("fades the bars when the category comes from elsewhere (a chip)", async () => {
    const { bars, model } = linked();
    await flush();
    model.set("category", "color");
    expect(bars.get("opacities")).toEqual([1, 0.3, 0.3]);
  });

  it("leaves clicks to the kernel without a chart or widget manager, and stops when asked", async () => {
    const none = linked({ ref: null });
    await flush();
    expect(none.model.get("handles_bar_clicks")).toBe(false);
    const missing = linked({ ref: "IPY_MODEL_other" });
    await flush();
    expect(missing.model.get("handles_bar_clicks")).toBe(false);

    const { bars, model, stop } = linked();
    await flush();
    stop();
    click(bars, 1);
    expect(model.get("category")).toBe("");
    expect(model.listenerCount()).toBe(0);
  });
});
