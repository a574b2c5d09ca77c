"""End to end: notebook 07 (EfficientNet-Lite2 on real photos, small mode) in real JupyterLab 4, light and dark.

Every widget it makes renders with loaded images: the block's gallery (photo crops and AM images), the
lucid / maco galleries side by side, the inversion strips; the DeconvNet sheets and the accentuation strip
are PNG outputs. Screenshots of the rendered notebook go to ``test-artifacts/``. The notebook, saved from
JupyterLab with its widget state, then exports with ``cnnvis export`` (no re-execution) to a page whose every
widget renders with the network blocked.
"""

import subprocess
import sys

import nbformat
import pytest

from browser import (assert_every_widget_rendered, browser_page, chromium_available, copy_notebook, jupyter_server,
                     open_offline, run_all_cells)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

NOTEBOOK = "07_real_model.ipynb"

IMAGES_LOADED = """(root) => {
  const imgs = [...root.querySelectorAll('img')];
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  let loaded = 0, varied = 0;
  for (const img of imgs) {
    if (!img.complete || img.naturalWidth === 0) continue;
    loaded += 1;
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 16) colours.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
    if (colours.size >= 16) varied += 1;
  }
  return {count: imgs.length, loaded, varied};
}"""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-real")
    copy_notebook(NOTEBOOK, root)
    return root


@pytest.fixture(scope="module")
def server(root, artifacts):
    with jupyter_server(root, artifacts / "jupyter-server-real.log") as base:
        yield base


def wait_loaded(page, locator, timeout=60_000):
    page.wait_for_function("(el) => { const imgs = [...el.querySelectorAll('img')];"
                           " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                           arg=locator.element_handle(), timeout=timeout)
    return locator.evaluate(IMAGES_LOADED)


def test_real_model_notebook_in_jupyterlab(server, root, artifacts):
    with browser_page(viewport=(1280, 1200)) as page:
        run_all_cells(page, f"{server}/lab/tree/{NOTEBOOK}")
        galleries = page.locator(".cnnvis-gallery")
        page.wait_for_function("() => document.querySelectorAll('.cnnvis-gallery').length === 5", timeout=60_000)

        block = galleries.nth(0)  # _blocks.10 over the photo crops, 8 channels, 4 crops + 1 AM image each
        block.scroll_into_view_if_needed()
        stats = wait_loaded(page, block)
        assert block.locator(".cnnvis-tile").count() == 8
        assert block.locator("img.cnnvis-crop").count() == 8 * 4
        assert stats["loaded"] == stats["count"] and stats["varied"] >= 8 * 4  # real photo content, not flat
        block.screenshot(path=str(artifacts / "real-model-gallery.png"))

        for index in (1, 2):  # class AM, lucid then maco: 4 classes each
            side = galleries.nth(index)
            stats = wait_loaded(page, side)
            assert side.locator(".cnnvis-tile").count() == 4
            assert stats["varied"] >= 4
        side_by_side = page.locator(".widget-hbox").filter(has=page.locator(".cnnvis-gallery")).first
        for index in (1, 2):  # the tiles are named by class
            assert galleries.nth(index).locator(".cnnvis-label").all_inner_texts() == [
                "goldfish", "ostrich", "flamingo", "monarch"]
        side_by_side.screenshot(path=str(artifacts / "real-model-class-am.png"))

        sheets = page.locator(".jp-OutputArea-output img[src^='data:image/png']")
        assert sheets.count() >= 3  # DeconvNet, guided, accentuation

        inversion = page.locator(".cnnvis-inversion")
        assert inversion.count() == 1
        inversion.scroll_into_view_if_needed()
        stats = wait_loaded(page, inversion)
        assert stats["varied"] >= 1
        inversion.screenshot(path=str(artifacts / "real-model-inversion.png"))

        block.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "real-model-light.png"))
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        block.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "real-model-dark.png"))
        side_by_side.screenshot(path=str(artifacts / "real-model-class-am-dark.png"))
        assert not page.errors, page.errors
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)

    saved = nbformat.read(root / NOTEBOOK, as_version=4)
    assert saved.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    out = root / "07_real_model.html"
    done = subprocess.run([sys.executable, "-m", "cnnvis_widgets.cli", "export", str(root / NOTEBOOK), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "no saved widget state" not in done.stdout, done.stdout + done.stderr
    with browser_page(viewport=(1280, 1200)) as page:
        blocked = open_offline(page)
        page.goto(out.as_uri())
        assert_every_widget_rendered(page)
        assert page.locator(".cnnvis-gallery").count() == 5 and page.locator(".cnnvis-inversion").count() == 1
        assert page.locator(".cnnvis-gallery").nth(0).locator("img.cnnvis-crop").count() == 8 * 4
        page.screenshot(path=str(artifacts / "exported-07_real_model.png"), full_page=True)
        assert not page.errors and not blocked, (page.errors, blocked)
