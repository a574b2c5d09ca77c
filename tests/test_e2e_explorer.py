"""End to end: AMExplorer in real JupyterLab 4 (headless Chromium): Run, live snapshots, Stop, chart."""

import time

import pytest

from browser import browser_page, chromium_available, jupyter_server, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

# Long enough that the run is still going when the test presses Stop (400 steps take ~4 s on a CPU).
STEPS = 4000

CELLS = [
    "import cnnvis_widgets as cv\n"
    "from cnnvis_widgets.widgets.am_explorer import AMExplorer\n"
    "model = cv.load_model(\"mini_alexnet\", device=\"cpu\")",
    f"ex = AMExplorer(model, layer=\"conv5\", units=[3, 9], steps={STEPS}, snapshot_every=4)\nex",
]

# The first image's pixels, read back through a canvas (null until it has loaded).
FIRST_IMAGE = """(root) => {
  const img = root.querySelector('img.cnnvis-am-image');
  if (!img || !img.complete || img.naturalWidth === 0) return null;
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
}"""
STEP = "(root) => Number(root.querySelector('.cnnvis-am-step').textContent.match(/step (\\d+)/)[1])"


def test_explorer_in_jupyterlab(tmp_path, artifacts):
    (tmp_path / "explorer.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-explorer.log") as base, browser_page() as page:
        run_all_cells(page, f"{base}/lab/tree/explorer.ipynb")

        root = page.locator(".cnnvis-explorer")
        root.wait_for(state="visible", timeout=60_000)
        handle = root.element_handle()
        run, stop = root.locator(".cnnvis-am-run"), root.locator(".cnnvis-am-stop")
        assert stop.is_disabled() and run.is_enabled()
        assert root.locator(".cnnvis-am-step").inner_text() == f"step 0 / {STEPS}"
        assert root.locator("select.cnnvis-am-layer").input_value() == "conv5"
        assert root.locator(".cnnvis-am-units").input_value() == "3, 9"

        run.click()
        page.wait_for_function(f"(root) => ({STEP})(root) > 0", arg=handle, timeout=60_000)
        page.wait_for_function(f"(root) => ({FIRST_IMAGE})(root) !== null", arg=handle, timeout=30_000)
        first = root.evaluate(FIRST_IMAGE)
        step_first = root.evaluate(STEP)
        assert stop.is_enabled() and run.is_disabled()
        assert root.locator("img.cnnvis-am-image").count() == 2
        # a later snapshot shows different pixels
        page.wait_for_function(
            f"([root, first, step]) => ({STEP})(root) > step + 8 && (() => {{"
            f"  const now = ({FIRST_IMAGE})(root);"
            f"  return now !== null && now.some((v, i) => v !== first[i]); }})()",
            arg=[handle, first, step_first], timeout=60_000)
        links = root.locator("a.cnnvis-am-save")
        assert links.count() == 2
        assert links.nth(0).get_attribute("download") == "am_conv5_3.png"
        assert links.nth(0).get_attribute("href").startswith("blob:")

        stop.click()
        page.wait_for_function("(root) => !root.querySelector('.cnnvis-am-run').disabled", arg=handle,
                               timeout=15_000)
        before = root.evaluate(STEP)
        time.sleep(2)
        after = root.evaluate(STEP)
        assert before == after and 0 < after < STEPS
        assert stop.is_disabled() and run.is_enabled()
        assert root.locator(".cnnvis-am-status").inner_text() == f"stopped at step {after}"
        assert root.evaluate(FIRST_IMAGE) is not None

        chart = page.locator(".bqplot").first
        chart.wait_for(state="visible", timeout=30_000)
        path = page.wait_for_function(
            "() => [...document.querySelectorAll('.bqplot path.line')].some(p => (p.getAttribute('d') || '').length > 20)",
            timeout=30_000)
        assert path
        area = page.locator(".jp-OutputArea-output").filter(has=root)
        area.screenshot(path=str(artifacts / "explorer.png"))
        texts = page.evaluate("() => [...document.querySelectorAll('.bqplot text')].map(t => t.textContent)")
        assert {"#3", "#9", "step", "objective"} <= set(texts), texts
        assert not page.errors, page.errors
