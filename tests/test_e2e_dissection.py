"""End to end: DissectionViewer in real JupyterLab 4 (headless Chromium) on a real dissection of MiniAlexNet.

A click on a category's bar filters the gallery to the units labelled in that category (as many as the
kernel's table has); a unit's detail draws its top images on canvases with the unit's mask (the same pixels
as the engine's overlay.py) or the concept's ground truth.
"""

import numpy as np
import pytest

from browser import browser_page, chromium_available, jupyter_server, kernel_json, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

PAGE_SIZE = 16
CELLS = [
    "import json\n"
    "import numpy as np\n"
    "import cnnvis_widgets as cv\n"
    "from cnnvis_widgets.dissection import dissect\n"
    "from cnnvis_widgets.dissection.overlay import overlay\n"
    "from cnnvis_widgets.widgets.dissection_viewer import DissectionViewer\n"
    "model = cv.load_model('mini_alexnet', device='cpu')\n"
    "world = cv.datasets.shapeworld(split='val')\n"
    "result = dissect(model, world, ['conv1', 'conv5'], progress=False)",
    f"viewer = DissectionViewer(result, layer='conv5', page_size={PAGE_SIZE})\nviewer",
    "DissectionViewer(result, layer='conv1', compare='conv5', page_size=8)",
]

# The tiles of the gallery: unit, category, detector flag, and whether their canvas has been drawn.
TILES = """(el) => [...el.querySelectorAll('.cnnvis-dis-tile')].map(t =>
  [Number(t.dataset.unit), t.dataset.category, t.dataset.detector === 'true', !!t.querySelector('canvas').dataset.drawn])"""
# RGB of one detail canvas, row-major.
CANVAS_RGB = """(canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const rgb = [];
  for (let i = 0; i < data.length; i += 4) rgb.push(data[i], data[i + 1], data[i + 2]);
  return {width: canvas.width, height: canvas.height, rgb};
}"""
BAR_OPACITIES = """(el) => [...el.querySelectorAll('.bqplot rect.bar')].map(r => parseFloat(getComputedStyle(r).opacity))"""

UNIT_RGB = (255, 43, 214)
CONCEPT_RGB = (0, 194, 255)


def _near(pixels, colour, tolerance=3):
    """Pixels within ``tolerance`` of ``colour`` in every channel."""
    return (np.abs(pixels - np.array(colour)) <= tolerance).all(1)


def _kernel_summary(page, category):
    return kernel_json(page, (
        "t = result.table('conv5')\n"
        f"print(json.dumps({{'categories': result.categories, 'concepts': [int(result.summary().loc['conv5', c]) "
        f"for c in result.categories], 'units': int((t.category == {category!r}).sum()) if {category!r} else 0, "
        f"'detectors': int(((t.category == {category!r}) & t.detector).sum()) if {category!r} else 0, "
        "'ordered': [int(u) for u in t[t.category == " + repr(category) + "].sort_values(['iou', 'unit'], "
        "ascending=[False, True]).unit][:" + str(PAGE_SIZE) + "]}))"))


def test_dissection_viewer_in_jupyterlab(tmp_path, artifacts):
    (tmp_path / "dissection.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-dissection.log") as base, \
            browser_page(viewport=(1280, 2000)) as page:
        run_all_cells(page, f"{base}/lab/tree/dissection.ipynb")

        outputs = page.locator(".jp-OutputArea-output").filter(has=page.locator(".cnnvis-dissection"))
        outputs.first.wait_for(state="visible", timeout=60_000)
        area = outputs.nth(0)
        root = area.locator(".cnnvis-dissection")
        handle = root.element_handle()
        all_drawn = f"(el) => ({TILES})(el).length > 0 && ({TILES})(el).every(t => t[3])"
        page.wait_for_function(all_drawn, arg=handle, timeout=60_000)
        totals = kernel_json(page, "t = result.table('conv5'); print(json.dumps([len(t), int(t.detector.sum())]))")
        assert root.locator(".cnnvis-dis-count").inner_text() == f"{totals[0]} units, {totals[1]} detectors"
        assert len(root.evaluate(TILES)) == PAGE_SIZE

        # the chart: one bar per category, as high as the summary's count of unique detected concepts
        page.wait_for_function(
            "(el) => el.querySelectorAll('.bqplot rect.bar').length > 0", arg=area.element_handle(), timeout=30_000)
        info = _kernel_summary(page, "")
        categories, concepts = info["categories"], info["concepts"]
        bars = area.locator(".bqplot rect.bar")
        assert bars.count() == len(categories)
        heights = [float(bars.nth(i).get_attribute("height")) for i in range(len(categories))]
        assert np.argmax(heights) == np.argmax(concepts)
        assert all((h > 1) == (c > 0) for h, c in zip(heights, concepts)), (heights, concepts)

        # click the tallest bar: the gallery shows only that category's units, as many as the kernel's table
        chosen = categories[int(np.argmax(concepts))]
        bars.nth(int(np.argmax(concepts))).click()
        only_chosen = f"(el) => ({TILES})(el).length > 0 && ({TILES})(el).every(t => t[1] === {chosen!r} && t[3])"
        page.wait_for_function(only_chosen, arg=handle, timeout=30_000)
        expected = _kernel_summary(page, chosen)
        tiles = root.evaluate(TILES)
        assert [t[0] for t in tiles] == expected["ordered"]  # by IoU, highest first
        assert len(tiles) == min(expected["units"], PAGE_SIZE)
        assert root.locator(".cnnvis-dis-count").inner_text() == \
            f"{expected['units']} units labelled {chosen}, {expected['detectors']} detectors"
        assert kernel_json(page, "print(json.dumps(viewer.category))", chosen) == chosen
        page.wait_for_function(f"(el) => ({BAR_OPACITIES})(el).filter(o => o < 0.5).length === {len(categories) - 1}",
                               arg=area.element_handle(), timeout=10_000)
        opacities = area.evaluate(BAR_OPACITIES)
        assert opacities[categories.index(chosen)] == 1 and max(np.delete(opacities, categories.index(chosen))) < 0.5
        assert root.locator(f".cnnvis-dis-chip[data-category='{chosen}']").get_attribute("aria-pressed") == "true"

        # the same bar again: every unit
        bars.nth(categories.index(chosen)).click()
        page.wait_for_function(f"(el) => ({TILES})(el).length === {PAGE_SIZE}", arg=handle, timeout=30_000)
        assert kernel_json(page, "print(json.dumps(viewer.category))", "") == ""
        assert {t[1] for t in root.evaluate(TILES)} != {chosen}

        # filter again and open the best unit of the category
        bars.nth(categories.index(chosen)).click()
        page.wait_for_function(only_chosen, arg=handle, timeout=30_000)
        unit = expected["ordered"][0]
        root.locator(f".cnnvis-dis-tile[data-unit='{unit}']").click()
        detail = root.locator(".cnnvis-dis-detail")
        detail.wait_for(state="visible", timeout=10_000)
        page.wait_for_function(
            "(el) => { const c = [...el.querySelectorAll('canvas.cnnvis-dis-overlay')];"
            " return c.length === 10 && c.every(x => x.dataset.drawn === 'both'); }", arg=handle, timeout=30_000)
        label = kernel_json(page, f"t = result.table('conv5'); print(json.dumps([t.label[{unit}], t.category[{unit}], "
                                  f"round(float(t.iou[{unit}]), 3)]))")
        assert detail.locator(".cnnvis-dis-detail-title").inner_text() == f"unit {unit} · {label[0]}"
        assert detail.locator(".cnnvis-dis-detail-meta").inner_text().startswith(f"{label[1]} · IoU {label[2]:.3f}")
        assert detail.locator(".cnnvis-dis-best tbody tr").count() == len(categories)

        # the reference pixels: an image where both masks have pixels, the engine's overlay of its unit mask
        reference = kernel_json(page, (
            f"images, unit_masks, concept_masks = result.unit_images('conv5', {unit})\n"
            "i = next((i for i in range(len(images)) if 0 < unit_masks[i].mean() < 1 and concept_masks[i].any()), 0)\n"
            "up = lambda m: np.kron(m, np.ones((4, 4), bool)).astype(int).ravel().tolist()\n"
            "print(json.dumps({'index': i, 'plain': np.kron(images[i], np.ones((2, 2, 1), np.uint8)).ravel().tolist(),\n"
            "  'unit_overlay': overlay(images[i], unit_masks[i], None, opacity=0.45, scale=2).ravel().tolist(),\n"
            "  'unit_mask': up(unit_masks[i]), 'concept_mask': up(concept_masks[i])}))"))
        canvas = detail.locator(f"canvas.cnnvis-dis-overlay[data-index='{reference['index']}']")
        plain = np.array(reference["plain"]).reshape(-1, 3)
        unit_mask = np.array(reference["unit_mask"], bool)
        concept_mask = np.array(reference["concept_mask"], bool)

        detail.locator(".cnnvis-dis-mask[data-mask='unit']").click()
        page.wait_for_function("(c) => c.dataset.drawn === 'unit'", arg=canvas.element_handle(), timeout=10_000)
        drawn = canvas.evaluate(CANVAS_RGB)
        assert (drawn["width"], drawn["height"]) == (128, 128)
        unit_pixels = np.array(drawn["rgb"]).reshape(-1, 3)
        expected_unit = np.array(reference["unit_overlay"]).reshape(-1, 3)
        close = np.abs(unit_pixels - expected_unit).max(1) <= 2
        assert close.mean() > 0.99, close.mean()  # the engine's overlay, pixel for pixel
        assert (np.abs(unit_pixels - plain).max(1) <= 2)[~unit_mask].all()  # off the unit mask: the image
        tinted = np.abs(unit_pixels - plain).max(1) > 2
        assert tinted[unit_mask].mean() > 0.9  # on it: tinted
        magenta = _near(unit_pixels, UNIT_RGB)  # the mask's outline
        assert magenta.sum() > 0 and magenta[unit_mask].mean() > magenta[~unit_mask].mean()
        shift = (unit_pixels[unit_mask] - plain[unit_mask]).mean(0)  # towards magenta: red and blue up, green down
        assert shift[0] > shift[1] and shift[2] > shift[1], shift

        detail.locator(".cnnvis-dis-mask[data-mask='concept']").click()
        page.wait_for_function("(c) => c.dataset.drawn === 'concept'", arg=canvas.element_handle(), timeout=10_000)
        concept_pixels = np.array(canvas.evaluate(CANVAS_RGB)["rgb"]).reshape(-1, 3)
        assert (np.abs(concept_pixels - unit_pixels).max(1) > 2).sum() > 100  # the picture changed
        assert (np.abs(concept_pixels - plain).max(1) <= 2)[~concept_mask].all()
        shift = (concept_pixels[concept_mask] - plain[concept_mask]).mean(0)  # towards cyan: red down, blue up
        assert shift[2] > shift[0] and shift[1] > shift[0], shift
        assert _near(concept_pixels, UNIT_RGB).sum() < magenta.sum() / 4  # the unit's outline is gone

        detail.locator(".cnnvis-dis-mask[data-mask='both']").click()
        page.wait_for_function("(c) => c.dataset.drawn === 'both'", arg=canvas.element_handle(), timeout=10_000)
        assert kernel_json(page, "print(json.dumps([viewer.panel.view.mask, viewer.panel.view.selected_unit]))",
                           ["both", unit]) == ["both", unit]
        page.wait_for_timeout(300)
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(artifacts / "dissection.png"))

        # compare mode: two panels side by side, a category chosen in one is chosen in the other
        compare = outputs.nth(1)
        panels = compare.locator(".cnnvis-dissection")
        assert panels.count() == 2
        assert [panels.nth(i).locator(".cnnvis-title").inner_text() for i in range(2)] == \
            ["MiniAlexNet · conv1", "MiniAlexNet · conv5"]
        boxes = [panels.nth(i).bounding_box() for i in range(2)]
        assert boxes[1]["x"] >= boxes[0]["x"] + boxes[0]["width"] - 1  # side by side
        panels.nth(0).locator(".cnnvis-dis-chip[data-category='part']").click()
        page.wait_for_function(
            f"(el) => ({TILES})(el).length > 0 && ({TILES})(el).every(t => t[1] === 'part')",
            arg=panels.nth(1).element_handle(), timeout=30_000)

        # the dark theme: light text on a dark background, the mask colours unchanged
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        colours = root.evaluate("""(el) => {
          const rgb = (c) => c.match(/\\d+/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
          const tile = el.querySelector('.cnnvis-dis-tile');
          const swatch = el.querySelector('.cnnvis-dis-legend-unit .cnnvis-dis-swatch');
          return {background: lum(rgb(getComputedStyle(tile).backgroundColor)), text: lum(rgb(getComputedStyle(el).color)),
                  swatch: getComputedStyle(swatch).backgroundColor};
        }""")
        assert colours["background"] < 80 < colours["text"]
        assert colours["swatch"] == "rgb(255, 43, 214)"
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(artifacts / "dissection-dark.png"))
        compare.scroll_into_view_if_needed()
        compare.screenshot(path=str(artifacts / "dissection-compare-dark.png"))
        assert not page.errors, page.errors
