"""End to end: the tour notebook in real JupyterLab 4 and Notebook 7, in headless Chromium."""

import pytest

from browser import PIXEL_PROBE, browser_page, chromium_available, copy_notebook, jupyter_server, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts):
    root = tmp_path_factory.mktemp("lab")
    copy_notebook("00_tour.ipynb", root)
    with jupyter_server(root, artifacts / "jupyter-server.log") as base:
        yield base


def run_tour_and_check_gallery(page, url, artifacts, shot_name):
    run_all_cells(page, url)

    galleries = page.locator(".cnnvis-gallery")
    page.wait_for_function("() => document.querySelectorAll('.cnnvis-gallery').length >= 2", timeout=60_000)
    conv5 = galleries.nth(0)  # top activations with their DeconvNet projections
    page.wait_for_function(
        "(el) => [...el.querySelectorAll('img.cnnvis-projection')].every(i => i.complete && i.naturalWidth > 0)",
        arg=conv5.element_handle(), timeout=30_000)
    first = conv5.locator(".cnnvis-tile").first
    assert first.locator("img.cnnvis-projection").count() == first.locator("img.cnnvis-crop").count() == 9
    first.screenshot(path=str(artifacts / f"{shot_name}-projections.png"))
    conv1 = galleries.nth(1)
    conv1.scroll_into_view_if_needed()
    page.wait_for_function(
        "(el) => [...el.querySelectorAll('img.cnnvis-crop')].every(i => i.complete && i.naturalWidth > 0)",
        arg=conv1.element_handle(), timeout=30_000)
    tiles = conv1.locator(".cnnvis-tile")
    assert tiles.count() == 16  # page_size in the tour
    probe = conv1.evaluate(PIXEL_PROBE)
    assert probe["loaded"] == probe["count"] == 16 * 9
    assert probe["colours"] >= 5 and probe["distinct_images"] > 100  # real, varied crops, not blank squares
    assert conv1.locator("img.cnnvis-filter").count() == 16
    assert conv1.locator("select.cnnvis-layer option").all_inner_texts() == [
        "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    conv1.screenshot(path=str(artifacts / f"{shot_name}-gallery.png"))

    tiles.nth(2).click()
    detail = conv1.locator(".cnnvis-detail")
    detail.wait_for(state="visible", timeout=10_000)
    assert detail.locator("img.cnnvis-detail-image").count() == 9
    # the kernel answers with each image in full, receptive field outlined
    page.wait_for_function("(el) => el.querySelectorAll('.cnnvis-detail img').length > 9",
                           arg=detail.element_handle(), timeout=30_000)
    conv1.screenshot(path=str(artifacts / f"{shot_name}-detail.png"))
    detail.locator(".cnnvis-detail-close").click()
    assert conv1.locator(".cnnvis-detail").count() == 0

    # next page comes from the kernel
    conv1.locator(".cnnvis-next").click()
    page.wait_for_function("(el) => el.querySelector('.cnnvis-tile').dataset.unit === '16'",
                           arg=conv1.element_handle(), timeout=30_000)
    # picking another layer computes it in the kernel
    conv1.locator("select.cnnvis-layer").select_option("conv3")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.cnnvis-tile').length === 16 && !el.querySelector('img.cnnvis-filter')",
        arg=conv1.element_handle(), timeout=60_000)


LUMINANCE = """(el) => {
  const rgb = (c) => c.match(/\\d+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const tile = el.querySelector('.cnnvis-tile');
  return {background: lum(rgb(getComputedStyle(tile).backgroundColor)), text: lum(rgb(getComputedStyle(tile).color))};
}"""


def test_tour_in_jupyterlab(server, artifacts):
    with browser_page() as page:
        run_tour_and_check_gallery(page, f"{server}/lab/tree/00_tour.ipynb", artifacts, "jupyterlab")
        gallery = page.locator(".cnnvis-gallery").nth(1)
        light = gallery.evaluate(LUMINANCE)
        assert light["background"] > light["text"]
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        dark = gallery.evaluate(LUMINANCE)
        assert dark["background"] < dark["text"] and dark["background"] < light["background"]
        gallery.screenshot(path=str(artifacts / "jupyterlab-dark-gallery.png"))
        assert not page.errors, page.errors


def test_tour_in_notebook7(server, artifacts):
    with browser_page() as page:
        run_tour_and_check_gallery(page, f"{server}/notebooks/00_tour.ipynb", artifacts, "notebook7")
        assert not page.errors, page.errors
