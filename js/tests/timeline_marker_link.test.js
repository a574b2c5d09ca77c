import { describe, expect, it } from "vitest";
import { linkMarker, markerX } from "../training_timeline/marker_link.js";
import { followReference, referencedId } from "../lib/references.js";
import { fakeModel } from "./helpers.js";

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

// A bqplot Lines model as far as the link uses it: get/set/save_changes.
function linesModel() {
  const state = { x: new Float64Array([0, 0]) };
  return {
    saves: 0,
    get: (name) => state[name],
    set: (name, value) => {
      state[name] = value;
    },
    save_changes() {
      this.saves += 1;
    },
  };
}

function linked(ref = "IPY_MODEL_marker") {
  const marker = linesModel();
  const model = fakeModel({ epochs: [0, 1, 5, 12], epoch_index: 0, chart_marker: ref, moves_marker: false });
  model.widget_manager = { get_model: async (id) => (id === "marker" ? marker : Promise.reject(new Error("none"))) };
  return { marker, model, stop: linkMarker(model) };
}

describe("the timeline's chart marker", () => {
  it("sits at the scrubber's epoch, as bqplot's typed x data", () => {
    expect([...markerX([0, 1, 5], 2)]).toEqual([5, 5]);
    expect(markerX([0, 1, 5], 2)).toBeInstanceOf(Float64Array);
    expect(markerX([0, 1], 4)).toBeNull();
    expect(markerX([], 0)).toBeNull();
  });

  it("follows the scrubber in the browser and tells the kernel so", async () => {
    const { marker, model } = linked();
    await flush();
    expect(model.get("moves_marker")).toBe(true);
    model.set("epoch_index", 2);
    expect([...marker.get("x")]).toEqual([5, 5]);
    model.set("epoch_index", 3);
    expect([...marker.get("x")]).toEqual([12, 12]);
    expect(marker.saves).toBeGreaterThanOrEqual(3);
  });

  it("leaves the marker to the kernel when it cannot find it, and stops when asked", async () => {
    const missing = linked("IPY_MODEL_other");
    await flush();
    expect(missing.model.get("moves_marker")).toBe(false);
    const { marker, model, stop } = linked();
    await flush();
    stop();
    model.set("epoch_index", 1);
    expect([...marker.get("x")]).toEqual([0, 0]);
  });
});

describe("widget references", () => {
  it("resolves IPY_MODEL_ references and follows their changes", async () => {
    expect(referencedId("IPY_MODEL_x1")).toBe("x1");
    expect(referencedId("x1")).toBeNull();
    const seen = [];
    const model = fakeModel({ other: "IPY_MODEL_a" });
    model.widget_manager = { get_model: async (id) => ({ id }) };
    const stop = followReference(model, "other", (found) => seen.push(found?.id ?? null), { tries: 1 });
    await flush();
    model.set("other", "IPY_MODEL_b");
    await flush();
    model.set("other", null);
    await flush();
    expect(seen).toEqual(["a", "b", null]);
    stop();
    model.set("other", "IPY_MODEL_c");
    await flush();
    expect(seen).toHaveLength(3);
  });
});
