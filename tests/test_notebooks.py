"""Every notebook executes; the tour also exports to HTML that shows its widgets with no kernel."""

from pathlib import Path

import pytest

from browser import PIXEL_PROBE, browser_page, chromium_available
from cnnvis_widgets.widgets.export import execute_notebook, notebook_to_html

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def executed():
    return {}


# Notebooks that an end-to-end test runs whole in JupyterLab (where Chromium is there), not twice.
RUN_IN_JUPYTERLAB = {"07_real_model.ipynb": "test_e2e_real_model.py"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, executed):
    if path.name in RUN_IN_JUPYTERLAB and chromium_available():
        pytest.skip(f"runs in JupyterLab in {RUN_IN_JUPYTERLAB[path.name]}")
    nb = execute_notebook(path, env={"CNNVIS_SMALL": "1"})
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.name == "00_tour.ipynb":  # the small switch reached the kernel
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "the tour scans 300 of them" in text
    executed[path.name] = nb


@pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")
def test_exported_tour_renders_without_a_kernel(executed, tmp_path, artifacts):
    from cnnvis_widgets.widgets.export import tour_notebook

    nb = executed.get("00_tour.ipynb") or execute_notebook(tour_notebook(), env={"CNNVIS_SMALL": "1"})
    assert nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    out = notebook_to_html(nb, tmp_path / "tour.html")
    html = out.read_text()
    assert 'src="http' not in html and "src='http" not in html
    assert "application/vnd.jupyter.widget-state+json" in html
    with browser_page() as page:
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "blob:", "data:"))
                   else route.continue_())
        page.goto(out.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.cnnvis-gallery').length >= 2", timeout=30_000)
        gallery = page.locator(".cnnvis-gallery").nth(1)
        page.wait_for_function(
            "(el) => [...el.querySelectorAll('img.cnnvis-crop')].every(i => i.complete && i.naturalWidth > 0)",
            arg=gallery.element_handle(), timeout=30_000)
        probe = gallery.evaluate(PIXEL_PROBE)
        assert probe["loaded"] == probe["count"] == 16 * 9
        assert probe["colours"] >= 5 and probe["distinct_images"] > 100  # real, varied crops
        gallery.locator(".cnnvis-tile").first.click()
        assert gallery.locator(".cnnvis-detail img.cnnvis-detail-image").count() == 9
        gallery.screenshot(path=str(artifacts / "exported-tour-gallery.png"))
        assert not page.errors, page.errors


def test_cli_tour_writes_html(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "tour.html"
    subprocess.run([sys.executable, "-m", "cnnvis_widgets.cli", "tour", "--small", "--out", str(out)], check=True)
    html = out.read_text()
    assert html.count('type="application/vnd.jupyter.widget-view+json"') >= 2
    assert "cnnvis-gallery" in html  # the inlined widget module
