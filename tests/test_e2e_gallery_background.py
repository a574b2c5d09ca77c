"""End to end in JupyterLab 4 (headless Chromium): a layer picked in the gallery computes in the background
while another cell runs and finishes; the view's Cancel button stops it after its current batch, and the
gallery goes back to the layer it shows, with no console errors."""

import time

import pytest

from browser import browser_page, chromium_available, jupyter_server, kernel_json, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

CELLS = [
    "import json, time, torch\n"
    "import cnnvis_widgets as cv\n"
    "class Slow(torch.utils.data.Dataset):  # ShapeWorld images, read slowly once `delay` is set\n"
    "    def __init__(self, world): self.world, self.delay, self.reads = world, 0.0, 0\n"
    "    def __len__(self): return 2000\n"
    "    def __getitem__(self, i):\n"
    "        time.sleep(self.delay); self.reads += 1\n"
    "        return self.world[i % len(self.world)]\n"
    "images = Slow(cv.datasets.shapeworld(split='val'))\n"
    "model = cv.load_model('mini_alexnet')\n"
    "gallery = cv.NeuronGallery(model, dataset=images, layers=['conv1', 'conv5'], layer='conv1', k=3, page_size=8)\n"
    "images.delay = 0.02  # from now on a layer takes about 40 s\n"
    "gallery",
]


def test_a_background_layer_leaves_the_kernel_free_and_cancel_stops_it(tmp_path, artifacts):
    (tmp_path / "background.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-background.log") as base, \
            browser_page(viewport=(1280, 1000)) as page:
        run_all_cells(page, f"{base}/lab/tree/background.ipynb")
        gallery = page.locator(".cnnvis-gallery")
        gallery.wait_for(state="visible", timeout=60_000)
        gallery.locator("select.cnnvis-layer").select_option("conv5")
        cancel = gallery.locator("button.cnnvis-cancel")
        cancel.wait_for(state="visible", timeout=30_000)
        page.wait_for_function("(el) => el.querySelector('progress.cnnvis-progress').value > 0",
                               arg=gallery.element_handle(), timeout=30_000)

        # another cell runs and finishes while the layer computes
        start = time.monotonic()
        other = kernel_json(page, "print(json.dumps({'computing': gallery.computing, 'reads': images.reads,"
                                  " 'answer': sum(range(10))}))")
        took = time.monotonic() - start
        assert other["answer"] == 45 and other["computing"] and took < 20, (other, took)  # it ran meanwhile
        gallery.screenshot(path=str(artifacts / "gallery-background-computing.png"))

        cancel.click()
        page.wait_for_function("(el) => el.querySelector('.cnnvis-status').textContent.startsWith('Cancelled conv5')",
                               arg=gallery.element_handle(), timeout=30_000)
        assert cancel.is_hidden()
        stopped = kernel_json(page, "print(json.dumps({'reads': images.reads, 'layer': gallery.layer,"
                                    " 'computing': gallery.computing}))")
        time.sleep(1.5)  # nothing goes on reading images after the cancel
        later = kernel_json(page, "print(json.dumps({'reads': images.reads}))")
        assert stopped["layer"] == "conv1" and not stopped["computing"]
        assert later["reads"] == stopped["reads"] < 2000 + 1900  # the constructor's 2000, then part of conv5
        assert gallery.locator("select.cnnvis-layer").input_value() == "conv1"
        assert gallery.locator(".cnnvis-tile").count() == 8
        gallery.screenshot(path=str(artifacts / "gallery-background-cancelled.png"))
        assert not page.errors, page.errors
        assert not page.console_errors, page.console_errors
