"""End to end: InversionView in real JupyterLab 4 (headless Chromium): strips load, a toggle swaps the strip and the
kernel re-highlights the chart's line."""

import re

import pytest

from browser import PIXEL_PROBE, browser_page, chromium_available, jupyter_server, kernel_json, notebook_json, run_all_cells

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not chromium_available(), reason="needs Debian's chromium (make chromium)")]

LAYERS = ["conv1", "conv2", "conv3", "conv5", "fc6"]

# Reconstructions that stand in for cv.invert's: each layer deeper blurs more; UpconvNet and the perturbations
# add noise (binarize also flattens the colours), so each combination's strip looks different.
CELLS = [
    "import numpy as np, torch, torch.nn.functional as F\n"
    "import cnnvis_widgets as cv\n"
    "from cnnvis_widgets.inversion import InversionResult, pixel_error\n"
    "from cnnvis_widgets.widgets.inversion_view import InversionView\n"
    "world = cv.datasets.shapeworld(split='val')\n"
    "original = torch.stack([world[i] for i in (0, 5, 9)]).numpy()\n"
    f"LAYERS = {LAYERS}\n"
    "def invert(method, perturbation, seed):\n"
    "    rng = np.random.default_rng(seed)\n"
    "    x0 = torch.from_numpy(original)\n"
    "    images, pixel, feature = {}, {}, {}\n"
    "    for depth, layer in enumerate(LAYERS, start=1):\n"
    "        small = F.interpolate(x0, size=max(64 >> depth, 2), mode='area')\n"
    "        x = F.interpolate(small, size=64, mode='bilinear').numpy()\n"
    "        if perturbation == 'binarize':\n"
    "            x = 0.5 * x + 0.5 * x.mean(1, keepdims=True)\n"
    "        noise = 0.03 * depth * (1 + (perturbation is not None) + (method == 'upconv'))\n"
    "        x = np.clip(x + rng.normal(0, noise, x.shape), 0, 1).astype(np.float32)\n"
    "        images[layer], pixel[layer] = x, pixel_error(x, original)\n"
    "        feature[layer] = np.full(len(x), 0.1 * depth, np.float32)\n"
    "    return InversionResult(original, images, feature, pixel, method, perturbation, model_name='MiniAlexNet')\n"
    "results = [invert(m, p, s) for s, (m, p) in enumerate([('regularized', None), ('regularized', 'binarize'),\n"
    "                                                       ('upconv', None), ('upconv', 'dropout')])]",
    "iv = InversionView(results)\niv",
]

STRIP_PIXELS = PIXEL_PROBE.replace("img.cnnvis-crop", "img.cnnvis-inv-image")
# A hash of one image's pixels, read back through a canvas.
IMAGE_HASH = """(img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0;
  for (let i = 0; i < data.length; i++) hash = (hash * 31 + data[i]) | 0;
  return hash;
}"""
# Stroke width and opacity of each chart line, in mark order.
LINE_STYLES = """() => [...document.querySelectorAll('.bqplot .curve path.line')].map(p => {
  const style = getComputedStyle(p);
  return [parseFloat(style.strokeWidth), parseFloat(style.opacity)];
})"""
KERNEL_STATE = "import json; print(json.dumps([iv.method, iv.perturbation, [l.stroke_width for l in iv.lines.values()]]))"


def test_inversion_view_in_jupyterlab(tmp_path, artifacts):
    (tmp_path / "inversion.ipynb").write_text(notebook_json(CELLS))
    with jupyter_server(tmp_path, artifacts / "jupyter-server-inversion.log") as base, \
            browser_page(viewport=(1280, 1200)) as page:
        run_all_cells(page, f"{base}/lab/tree/inversion.ipynb")

        root = page.locator(".cnnvis-inversion")
        root.wait_for(state="visible", timeout=60_000)
        handle = root.element_handle()
        loaded = "(el) => [...el.querySelectorAll('img.cnnvis-inv-image')].every(i => i.complete && i.naturalWidth > 0)"
        page.wait_for_function(loaded, arg=handle, timeout=30_000)
        assert root.locator(".cnnvis-inv-strip").count() == 3
        first = root.locator(".cnnvis-inv-strip").first
        assert first.locator(".cnnvis-inv-layer").all_inner_texts() == ["original", *LAYERS]
        shown_errors = first.locator(".cnnvis-inv-reconstruction .cnnvis-inv-error").all_inner_texts()
        assert all(re.fullmatch(r"pixel error \d\.\d\d+", t) for t in shown_errors), shown_errors
        values = [float(t.split()[-1]) for t in shown_errors]
        assert values == sorted(values) and values[0] > 0  # deeper layers, blurrier reconstructions
        pixels = root.evaluate(STRIP_PIXELS)
        assert pixels["loaded"] == pixels["count"] == 3 * (1 + len(LAYERS))
        assert pixels["colours"] >= 50 and pixels["distinct_images"] == pixels["count"]  # real, varied images

        # the toggles: only the combinations given are enabled
        def states(kind):
            return root.evaluate(f"""(el) => [...el.querySelectorAll('.cnnvis-inv-{kind}')].map(b =>
              [b.dataset.{kind}, b.getAttribute('aria-pressed'), b.disabled])""")
        assert states("method") == [["regularized", "true", False], ["upconv", "false", False]]
        assert states("perturbation") == [["none", "true", False], ["binarize", "false", False],
                                          ["dropout", "false", True]]

        # the chart: one line per combination, the shown one thick and opaque
        page.wait_for_function(
            "() => [...document.querySelectorAll('.bqplot .curve path.line')].filter(p => (p.getAttribute('d') || '').length > 20).length === 4",
            timeout=30_000)
        lines = page.evaluate(LINE_STYLES)
        assert [w for w, _ in lines] == [4, 1.5, 1.5, 1.5] and lines[0][1] == 1 and lines[1][1] < 0.5
        texts = page.evaluate("() => [...document.querySelectorAll('.bqplot text')].map(t => t.textContent)")
        assert {*LAYERS, "layer", "pixel error", "regularized", "UpconvNet · dropout"} <= set(texts), texts

        # binarize: the strip's reconstructions change, and the kernel highlights the binarize line
        fc6 = first.locator("img.cnnvis-inv-image[data-layer='conv3']")
        before = fc6.evaluate(IMAGE_HASH)
        root.locator(".cnnvis-inv-perturbation[data-perturbation='binarize']").click()
        page.wait_for_function(
            "(el) => el.querySelector(\".cnnvis-inv-perturbation[data-perturbation='binarize']\").getAttribute('aria-pressed') === 'true'",
            arg=handle, timeout=10_000)
        page.wait_for_function(loaded, arg=handle, timeout=30_000)
        after = fc6.evaluate(IMAGE_HASH)
        assert after != before
        expected = ["regularized", "binarize", [1.5, 4.0, 1.5, 1.5]]
        assert kernel_json(page, KERNEL_STATE, expected) == expected
        page.wait_for_function(f"() => ({LINE_STYLES})()[1][0] === 4", timeout=10_000)
        assert [w for w, _ in page.evaluate(LINE_STYLES)] == [1.5, 4, 1.5, 1.5]

        # the method toggle, by keyboard: UpconvNet has no binarize result, so it shows its unperturbed one
        root.locator(".cnnvis-inv-method[data-method='upconv']").focus()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(el) => el.querySelector(\".cnnvis-inv-perturbation[data-perturbation='none']\").getAttribute('aria-pressed') === 'true'",
            arg=handle, timeout=10_000)
        assert states("perturbation") == [["none", "true", False], ["binarize", "false", True],
                                          ["dropout", "false", False]]
        root.locator(".cnnvis-inv-perturbation[data-perturbation='dropout']").click()
        page.wait_for_function(loaded, arg=handle, timeout=30_000)
        page.wait_for_function(f"() => ({LINE_STYLES})()[3][0] === 4", timeout=10_000)
        page.wait_for_timeout(300)
        area = page.locator(".jp-OutputArea-output").filter(has=root)
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(artifacts / "inversion.png"))

        # the dark theme: the toggles turn dark, the text light
        page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.wait_for_timeout(500)
        colours = root.evaluate("""(el) => {
          const rgb = (c) => c.match(/\\d+/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
          const off = el.querySelector('.cnnvis-inv-toggle[aria-pressed="false"]:not(:disabled)');
          return {background: lum(rgb(getComputedStyle(off).backgroundColor)), text: lum(rgb(getComputedStyle(el).color))};
        }""")
        assert colours["background"] < 80 < colours["text"]
        area.screenshot(path=str(artifacts / "inversion-dark.png"))
        assert not page.errors, page.errors
