import { describe, expect, it } from "vitest";
import { clampPage, pageCount, pageLabel, unitRange } from "../lib/paging.js";
import { formatValue } from "../lib/format.js";
import { gridColumns } from "../lib/layout.js";
import { createUrlPool, releaseWhenSettled, toBytes } from "../lib/bytes.js";
import { h } from "../lib/dom.js";
import { normalizeTile } from "../neuron_gallery/tiles.js";
import { pngBytes, stubObjectUrls } from "./helpers.js";

describe("paging", () => {
  it("counts pages, never fewer than one", () => {
    expect(pageCount(64, 16)).toBe(4);
    expect(pageCount(65, 16)).toBe(5);
    expect(pageCount(0, 16)).toBe(1);
    expect(pageCount(10, 0)).toBe(10);
  });

  it("clamps pages and labels them 1-based", () => {
    expect(clampPage(-1, 4)).toBe(0);
    expect(clampPage(7, 4)).toBe(3);
    expect(pageLabel(1, 4)).toBe("page 2 of 4");
  });

  it("gives the unit range of a page", () => {
    expect(unitRange(0, 16, 40)).toEqual([0, 15]);
    expect(unitRange(2, 16, 40)).toEqual([32, 39]);
    expect(unitRange(3, 16, 40)).toBeNull();
  });
});

describe("formatValue", () => {
  it("keeps three significant digits", () => {
    expect(formatValue(0.123456)).toBe("0.123");
    expect(formatValue(12.3456)).toBe("12.3");
    expect(formatValue(-4.5678)).toBe("-4.57");
    expect(formatValue(123456)).toBe("1.23e+5");
  });

  it("marks missing values", () => {
    expect(formatValue(undefined)).toBe("–");
    expect(formatValue(NaN)).toBe("–");
    expect(formatValue("3")).toBe("–");
  });
});

describe("gridColumns", () => {
  it("is ceil(sqrt(k))", () => {
    expect([1, 2, 4, 5, 9, 10, 16].map(gridColumns)).toEqual([1, 2, 2, 3, 3, 4, 4]);
    expect(gridColumns(0)).toBe(1);
  });
});

describe("toBytes", () => {
  it("accepts DataView, ArrayBuffer and typed arrays", () => {
    const bytes = pngBytes();
    const offset = new Uint8Array(bytes.length + 3);
    offset.set(bytes, 3);
    const views = [
      new DataView(bytes.buffer),
      bytes.buffer,
      bytes,
      new DataView(offset.buffer, 3, bytes.length),
    ];
    for (const view of views) expect(Array.from(toBytes(view))).toEqual(Array.from(bytes));
    expect(toBytes(null)).toBeNull();
    expect(toBytes("abc")).toBeNull();
  });
});

describe("createUrlPool", () => {
  it("makes PNG blob URLs and revokes all of them", () => {
    const urls = stubObjectUrls();
    const pool = createUrlPool();
    expect(pool.add(pngBytes())).toBe("blob:test/0");
    expect(pool.add(new DataView(pngBytes().buffer))).toBe("blob:test/1");
    expect(pool.add(null)).toBeNull();
    expect(pool.add(new Uint8Array(0))).toBeNull();
    const blob = urls.create.mock.calls[0][0];
    expect(blob).toBeInstanceOf(Blob);
    expect(blob.type).toBe("image/png");
    expect(blob.size).toBe(pngBytes().length);
    pool.revokeAll();
    expect(urls.revoke.mock.calls.map((c) => c[0])).toEqual(["blob:test/0", "blob:test/1"]);
    expect(pool.size).toBe(0);
  });
});

describe("h", () => {
  it("puts text in as text", () => {
    const node = h("div", { text: "<b>x</b>", title: "t" }, ["<i>y</i>"]);
    expect(node.children).toHaveLength(0);
    expect(node.textContent).toBe("<b>x</b><i>y</i>");
    expect(node.getAttribute("title")).toBe("t");
  });
});

describe("normalizeTile", () => {
  it("fills in missing fields", () => {
    expect(normalizeTile({ unit: 3 })).toEqual({
      unit: 3,
      label: "unit 3",
      values: [],
      image_indices: [],
      images: [],
      projections: [],
      filter: null,
      am: [],
      am_values: [],
      flags: [],
    });
  });
});

describe("releaseWhenSettled", () => {
  it("revokes a replaced view's URLs only after its images have loaded", async () => {
    const urls = stubObjectUrls();
    const pool = createUrlPool();
    const loading = h("img", { src: pool.add(pngBytes()) });
    const done = h("img", { src: pool.add(pngBytes()) });
    Object.defineProperty(loading, "complete", { value: false });
    Object.defineProperty(done, "complete", { value: true });
    const old = h("div", {}, [loading, done]);
    const released = releaseWhenSettled([old, null], pool);
    await Promise.resolve();
    expect(urls.revoke).not.toHaveBeenCalled(); // one image still reads its URL
    loading.dispatchEvent(new Event("load"));
    await released;
    expect(urls.revoke).toHaveBeenCalledTimes(2);
    expect(urls.live.size).toBe(0);
  });

  it("revokes at once when nothing is loading", async () => {
    const urls = stubObjectUrls();
    const pool = createUrlPool();
    pool.add(pngBytes());
    await releaseWhenSettled(null, pool);
    expect(urls.revoke).toHaveBeenCalledTimes(1);
  });
});
