"""End to end: TrainingTimeline in real JupyterLab 4 (headless Chromium): images, scrubber, kernel sync, play, pause."""

import time

import pytest

from browser import PIXEL_PROBE, browser_page, chromium_available, jupyter_server, kernel_json, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

EPOCHS = [0, 1, 2, 5, 10, 12]
UNITS = [1, 4, 7, 12]

CELLS = [
    "import torch\n"
    "import cnnvis_widgets as cv\n"
    "world = cv.datasets.shapeworld(split=\"val\")\n"
    "probe = torch.utils.data.Subset(world, range(64))\n"
    f"record = cv.TrainingRecord.from_mini_alexnet(probe, \"conv5\", {UNITS}, \"record-conv5\")",
    "tl = cv.TrainingTimeline(record, interval_ms=700)\ntl",
]

# Every grid image (top crops and projections) read back through a canvas, with the gallery's probe.
GRID_PIXELS = PIXEL_PROBE.replace("img.cnnvis-crop", "img.cnnvis-tl-crop, img.cnnvis-tl-projection")
CURRENT_COLUMNS = """(root) => [...new Set([...root.querySelectorAll('.cnnvis-tl-cell.cnnvis-tl-current')]
  .map(c => Number(c.dataset.column)))]"""
EPOCH_LABEL = "(root) => root.querySelector('.cnnvis-tl-epoch').textContent"

# Runs code in the notebook's kernel and returns what it printed.
KERNEL_STATE = "import json; print(json.dumps([tl.epoch_index, tl.epoch, tl.playing, list(tl.marker.x), tl.selected_unit]))"


def test_timeline_in_jupyterlab(tmp_path, artifacts):
    (tmp_path / "timeline.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-timeline.log") as base, \
            browser_page(viewport=(1280, 1200)) as page:
        run_all_cells(page, f"{base}/lab/tree/timeline.ipynb")

        root = page.locator(".cnnvis-timeline")
        root.wait_for(state="visible", timeout=60_000)
        handle = root.element_handle()
        page.wait_for_function(
            "(el) => [...el.querySelectorAll('img.cnnvis-tl-crop')].every(i => i.complete && i.naturalWidth > 0)",
            arg=handle, timeout=30_000)
        assert root.locator(".cnnvis-tl-head").all_inner_texts() == [f"epoch {e}" for e in EPOCHS]
        assert root.locator(".cnnvis-tl-unit").all_inner_texts() == [f"unit {u}" for u in UNITS]
        pixels = root.evaluate(GRID_PIXELS)
        cells = len(UNITS) * len(EPOCHS)
        assert pixels["loaded"] == pixels["count"] == 2 * cells  # a top crop and a projection per cell
        assert pixels["colours"] >= 50 and pixels["distinct_images"] >= cells  # real, varied images
        assert root.evaluate(EPOCH_LABEL) == "epoch 0" and root.evaluate(CURRENT_COLUMNS) == [0]

        # the scrubber, by keyboard: three steps right is epoch 5; the kernel follows and moves the chart marker
        scrubber = root.locator(".cnnvis-tl-scrubber")
        scrubber.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert root.evaluate(EPOCH_LABEL) == "epoch 5" and root.evaluate(CURRENT_COLUMNS) == [3]
        assert "val_accuracy 0.242" in root.locator(".cnnvis-tl-metrics").inner_text()
        assert kernel_json(page, KERNEL_STATE, [3, 5, False, [5.0, 5.0], -1]) == [3, 5, False, [5.0, 5.0], -1]

        # a cell opens the detail panel at its epoch
        root.locator(".cnnvis-tl-cell[data-unit='7'][data-epoch='2']").click()
        detail = root.locator(".cnnvis-tl-detail")
        detail.wait_for(state="visible", timeout=10_000)
        assert detail.locator(".cnnvis-tl-detail-title").inner_text() == "conv5 unit 7 · epoch 2"
        assert detail.locator("img.cnnvis-tl-detail-crop").count() == 1
        assert "val_accuracy" in detail.locator(".cnnvis-tl-facts").inner_text()
        assert root.evaluate(CURRENT_COLUMNS) == [2]
        page.wait_for_timeout(300)
        area = page.locator(".jp-OutputArea-output").filter(has=root)
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(artifacts / "timeline.png"))

        # play advances on its own; pause stops it
        root.locator(".cnnvis-tl-play").click()
        page.wait_for_function(f"(root) => ({EPOCH_LABEL})(root) === 'epoch 10'", arg=handle, timeout=10_000)
        assert root.locator(".cnnvis-tl-play").get_attribute("aria-pressed") == "true"
        assert detail.locator(".cnnvis-tl-detail-title").inner_text() == "conv5 unit 7 · epoch 10"
        root.locator(".cnnvis-tl-play").click()
        stopped = root.evaluate(EPOCH_LABEL)
        time.sleep(1.6)
        assert root.evaluate(EPOCH_LABEL) == stopped
        assert root.locator(".cnnvis-tl-play").inner_text() == "▶ Play"
        index = EPOCHS.index(int(stopped.split()[1]))
        expected = [index, EPOCHS[index], False, [float(EPOCHS[index])] * 2, 7]
        assert kernel_json(page, KERNEL_STATE, expected) == expected

        # the dark theme: the grid's cells turn dark, their text light
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        colours = root.evaluate("""(el) => {
          const rgb = (c) => c.match(/\\d+/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
          const cell = el.querySelector('.cnnvis-tl-cell:not(.cnnvis-tl-current)');
          return {background: lum(rgb(getComputedStyle(cell).backgroundColor)), text: lum(rgb(getComputedStyle(el).color))};
        }""")
        assert colours["background"] < 80 < colours["text"]
        area.screenshot(path=str(artifacts / "timeline-dark.png"))
        assert not page.errors, page.errors
        revoked = [line for line in page.console_errors if "ERR_FILE_NOT_FOUND" in line]
        assert not revoked, revoked  # no image loaded from an object URL after it was revoked
