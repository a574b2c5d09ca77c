"""End to end: ``devices=`` from a notebook cell in real JupyterLab 4 (headless Chromium): two CPU worker
processes started from the kernel scan the images, their progress reaches the cell, and the merged result,
equal to the kernel's own single-process result, shows in the gallery; a model class defined in a notebook cell
reaches the workers, with the same result as in the kernel."""

import json

import pytest

from browser import browser_page, chromium_available, jupyter_server, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

CELLS = [
    "import json, numpy as np, torch\n"
    "import cnnvis_widgets as cv\n"
    "model = cv.load_model('mini_alexnet')\n"
    "images = torch.utils.data.Subset(cv.datasets.shapeworld(split='val'), range(257))\n"
    "fractions = []\n"
    "top = cv.top_activations(model, images, 'conv3', k=4, batch_size=16, devices=['cpu', 'cpu'],\n"
    "                         progress=fractions.append)\n"
    "alone = cv.top_activations(model, images, 'conv3', k=4, batch_size=16, progress=False)\n"
    "print('RESULT ' + json.dumps({'same': bool(np.array_equal(top.indices, alone.indices)\n"
    "                                           and np.array_equal(top.values, alone.values)),\n"
    "                              'updates': len(fractions), 'last': fractions[-1],\n"
    "                              'devices': cv.distributed.last_run['devices']}))",
    "cv.NeuronGallery(cv.top_activations(model, images, 'conv3', k=4, batch_size=16, devices=['cpu', 'cpu']),\n"
    "                 page_size=8)",
    "class MyNet(torch.nn.Module):  # defined in this cell: it reaches the workers by value\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(),\n"
    "                                            torch.nn.Conv2d(8, 16, 3))\n"
    "        self.squash = lambda x: torch.tanh(x)\n"
    "    def forward(self, x):\n"
    "        return self.squash(self.features(x)).mean((2, 3))\n"
    "torch.manual_seed(0)\n"
    "mine = cv.Model(MyNet(), input_size=(3, 64, 64))\n"
    "two = cv.top_activations(mine, images, 'features.2', k=4, batch_size=16, devices=['cpu', 'cpu'], progress=False)\n"
    "one = cv.top_activations(mine, images, 'features.2', k=4, batch_size=16, progress=False)\n"
    "print('MYNET ' + json.dumps({'same': bool(np.array_equal(one.indices, two.indices)\n"
    "                                          and np.array_equal(one.values, two.values))}))",
]


def test_devices_from_a_notebook_cell(tmp_path, artifacts):
    (tmp_path / "distributed.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-distributed.log") as base, \
            browser_page(viewport=(1280, 1000)) as page:
        run_all_cells(page, f"{base}/lab/tree/distributed.ipynb")
        text = page.locator(".jp-OutputArea-output").filter(has_text="RESULT").first.inner_text()
        result = json.loads(text.split("RESULT ", 1)[1].strip().splitlines()[0])
        assert result["same"] and result["devices"] == ["cpu", "cpu"]
        assert result["updates"] >= 5 and result["last"] == 1.0  # the workers' progress streamed to the kernel
        mine = page.locator(".jp-OutputArea-output").filter(has_text="MYNET").first.inner_text()
        assert json.loads(mine.split("MYNET ", 1)[1].strip().splitlines()[0]) == {"same": True}
        gallery = page.locator(".cnnvis-gallery")
        gallery.wait_for(state="visible", timeout=60_000)
        page.wait_for_function("(el) => [...el.querySelectorAll('img.cnnvis-crop')].length === 8 * 4 &&"
                               " [...el.querySelectorAll('img.cnnvis-crop')].every(i => i.complete && i.naturalWidth > 0)",
                               arg=gallery.element_handle(), timeout=30_000)
        gallery.screenshot(path=str(artifacts / "distributed-gallery.png"))
        assert not page.errors, page.errors
