"""Every notebook executes, and exports to one HTML page whose every widget renders with no kernel and no network."""

from pathlib import Path

import pytest

from browser import PIXEL_PROBE, assert_every_widget_rendered, browser_page, chromium_available, open_offline
from cnnvis_widgets.widgets.export import execute_notebook, notebook_to_html

pytestmark = pytest.mark.notebook

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


# -- exported pages: every widget renders offline ---------------------------------------------------------------
# A hash of each image matching `selector` under the root, read back through a canvas.
IMAGE_HASHES = """([root, selector]) => [...root.querySelectorAll(selector)].map(img => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  let hash = 0;
  for (const v of ctx.getImageData(0, 0, canvas.width, canvas.height).data) hash = (hash * 31 + v) | 0;
  return hash;
})"""


def _hashes(page, root, selector):
    return page.evaluate(IMAGE_HASHES, [root.element_handle(), selector])


def _timeline_scrubs(page, artifacts):
    """Notebook 03: the scrubber moves to other saved epochs; the opened cell's images follow."""
    root = page.locator(".cnnvis-timeline").first
    root.locator(".cnnvis-tl-cell[data-column='0']").first.click()
    detail = "img.cnnvis-tl-detail-crop, img.cnnvis-tl-detail-projection"
    before = _hashes(page, root, detail)
    assert before and root.locator(".cnnvis-tl-epoch").inner_text() == "epoch 0"
    # the chart of this timeline: in the VBox that holds its view
    lines = ("(el) => [...el.closest('.widget-vbox').querySelectorAll('.bqplot path.line')]"
             ".map(p => p.getAttribute('d'))")
    timeline = root
    chart_before = timeline.evaluate(lines)
    root.locator(".cnnvis-tl-scrubber").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert root.locator(".cnnvis-tl-epoch").inner_text() == "epoch 5"
    assert root.locator(".cnnvis-tl-head.cnnvis-tl-current").inner_text() == "epoch 5"
    page.wait_for_function(f"([el, before]) => JSON.stringify(({lines})(el)) !== JSON.stringify(before)",
                           arg=[timeline.element_handle(), chart_before], timeout=10_000)
    moved = [a != b for a, b in zip(chart_before, timeline.evaluate(lines))]
    assert sum(moved) == 1, moved  # the epoch marker moved; the metric lines stayed
    page.wait_for_function("(el) => [...el.querySelectorAll('.cnnvis-tl-detail img')].every(i => i.complete)",
                           arg=root.element_handle(), timeout=10_000)
    after = _hashes(page, root, detail)
    assert len(after) == len(before) and after != before
    root.screenshot(path=str(artifacts / "exported-timeline-epoch5.png"))


def _dissection_filters(page, artifacts):
    """Notebook 05: a click on a category's bar shows only that category's units; again, every unit."""
    viewer = page.locator(".widget-vbox").filter(has=page.locator(".cnnvis-dissection")).last
    root = viewer.locator(".cnnvis-dissection").first
    tiles = "(el) => [...el.querySelectorAll('.cnnvis-dis-tile')].map(t => t.dataset.category)"
    everything = root.evaluate(tiles)
    bars = viewer.locator(".bqplot rect.bar")
    heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]
    index = max(range(len(heights)), key=heights.__getitem__)
    bars.nth(index).click()
    chosen = root.locator(".cnnvis-dis-chip[aria-pressed='true']")
    page.wait_for_function("(el) => el.querySelector(\".cnnvis-dis-chip[aria-pressed='true']\").dataset.category",
                           arg=root.element_handle(), timeout=10_000)
    category = chosen.get_attribute("data-category")
    shown = root.evaluate(tiles)
    assert shown and set(shown) == {category} and len(set(everything)) > 1
    assert root.locator(".cnnvis-dis-count").inner_text().split(" units")[0].isdigit()
    opacities = viewer.evaluate(
        "(el) => [...el.querySelectorAll('.bqplot rect.bar')].map(r => +getComputedStyle(r).opacity)")
    assert opacities[index] == 1 and max(o for i, o in enumerate(opacities) if i != index) < 0.5
    viewer.screenshot(path=str(artifacts / "exported-dissection-filtered.png"))
    bars.nth(index).click()
    page.wait_for_function(f"(el) => ({tiles})(el).length === {len(everything)}", arg=root.element_handle(),
                           timeout=10_000)
    assert root.locator(".cnnvis-dis-chip[data-category='']").get_attribute("aria-pressed") == "true"


def _inversion_toggles(page, artifacts):
    """Notebook 04: the method and perturbation toggles switch the reconstructions shown."""
    root = page.locator(".cnnvis-inversion").first
    images = ".cnnvis-inv-reconstruction img.cnnvis-inv-image"
    before = _hashes(page, root, images)
    caption = root.locator(".cnnvis-inv-caption").inner_text()
    widths = ("(el) => [...el.closest('.widget-vbox').querySelectorAll('.bqplot path.line')]"
              ".map(p => getComputedStyle(p).strokeWidth)")
    toggles = (".cnnvis-inv-method[data-method='upconv']", ".cnnvis-inv-perturbation[data-perturbation='binarize']")
    shown_widths = root.evaluate(widths)
    for toggle in toggles:
        root.locator(toggle).click()
        assert root.locator(toggle).get_attribute("aria-pressed") == "true"
        page.wait_for_function("(el) => [...el.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)",
                               arg=root.element_handle(), timeout=10_000)
        after = _hashes(page, root, images)
        assert len(after) == len(before) > 0 and after != before
        assert root.locator(".cnnvis-inv-caption").inner_text() != caption
        page.wait_for_function(f"([el, before]) => JSON.stringify(({widths})(el)) !== JSON.stringify(before)",
                               arg=[root.element_handle(), shown_widths], timeout=10_000)
        thick = [w == "4px" for w in shown_widths]
        shown_widths = root.evaluate(widths)
        # the thick line (and its legend swatch) moved to the combination shown; no other line got thick
        assert sum(w == "4px" for w in shown_widths) == sum(thick) > 0 and [w == "4px" for w in shown_widths] != thick
        before, caption = after, root.locator(".cnnvis-inv-caption").inner_text()
    root.screenshot(path=str(artifacts / "exported-inversion-upconv-binarize.png"))


OFFLINE_INTERACTIONS = {"03_training_evolution.ipynb": _timeline_scrubs,
                        "04_network_inversion.ipynb": _inversion_toggles,
                        "05_network_dissection.ipynb": _dissection_filters}


@pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_exported_notebook_renders_every_widget_offline(path, executed, tmp_path, artifacts):
    nb = executed.get(path.name)
    if nb is None:
        pytest.skip("not executed in this session (test_notebook_executes runs it)")
    out = notebook_to_html(nb, tmp_path / f"{path.stem}.html")
    with browser_page(viewport=(1280, 1000)) as page:
        blocked = open_offline(page)
        page.goto(out.as_uri())
        assert_every_widget_rendered(page)
        page.screenshot(path=str(artifacts / f"exported-{path.stem}.png"), full_page=True)
        if path.name in OFFLINE_INTERACTIONS:
            OFFLINE_INTERACTIONS[path.name](page, artifacts)
        assert not page.errors, page.errors
        assert not page.console_errors, page.console_errors
        assert not blocked, blocked
