"""``cnnvis export``: any notebook to one HTML page, executed first or from its saved outputs and widget state."""

import subprocess
import sys

import nbformat
import pytest

from browser import notebook_json

pytestmark = pytest.mark.notebook  # executes notebooks in a kernel

CELLS = [
    "import torch, cnnvis_widgets as cv\n"
    "model = cv.load_model('mini_alexnet')\n"
    "images = torch.utils.data.Subset(cv.datasets.shapeworld(split='val'), range(40))\n"
    "cv.NeuronGallery(cv.top_activations(model, images, 'conv2', k=2, progress=False), page_size=4)",
]


def cnnvis(*args):
    return subprocess.run([sys.executable, "-m", "cnnvis_widgets.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_export_executes_a_notebook_and_keeps_its_widget_state(tmp_path):
    notebook = tmp_path / "gallery.ipynb"
    notebook.write_text(notebook_json(CELLS))
    done = cnnvis("export", str(notebook), "--execute")
    assert done.returncode == 0, done.stderr
    page = tmp_path / "gallery.html"  # default: beside the notebook
    assert f"wrote {page}" in done.stdout
    html = page.read_text()
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == 1  # the one widget output
    assert "application/vnd.jupyter.widget-state+json" in html and 'src="http' not in html


def test_export_of_a_saved_notebook_without_widget_state_says_what_to_do(tmp_path):
    notebook = tmp_path / "plain.ipynb"
    nb = nbformat.reads(notebook_json(["print('hello')"]), as_version=4)
    nbformat.write(nb, notebook)
    done = cnnvis("export", str(notebook), "--out", str(tmp_path / "out.html"))
    assert done.returncode == 0 and (tmp_path / "out.html").exists()
    assert "holds no saved widget state" in done.stdout and "--execute" in done.stdout
    missing = cnnvis("export", str(tmp_path / "nothing.ipynb"))
    assert missing.returncode != 0 and "is not a file" in missing.stderr
