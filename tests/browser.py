"""Headless Debian Chromium through Playwright, and a JupyterLab server for the end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

# Reads every crop image of the gallery back through a canvas: how many loaded, how many colours,
# how many different images.
PIXEL_PROBE = """(root) => {
  const imgs = [...root.querySelectorAll('img.cnnvis-crop')];
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  let loaded = 0, distinct = new Set(), images = new Set();
  for (const img of imgs) {
    if (!img.complete || img.naturalWidth === 0) continue;
    loaded += 1;
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) {
      distinct.add(data[i] * 65536 + data[i + 1] * 256 + data[i + 2]);
      hash = (hash * 31 + data[i] * 7 + data[i + 1] * 3 + data[i + 2]) | 0;
    }
    images.add(hash);
  }
  return {count: imgs.length, loaded, colours: distinct.size, distinct_images: images.size};
}"""


# JupyterLab (window.jupyterapp exposed): the open notebook's kernel is idle; every code cell has run.
KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && w.content && w.content.widgets.length > 0;
}"""
ALL_CELLS_RAN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return w.sessionContext.session.kernel.status === 'idle'
    && cells.every(c => c.model.executionCount !== null);
}"""


# Runs Python code in the open notebook's kernel and returns what it printed.
KERNEL_PRINT = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let out = '';
  future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await future.done;
  return out;
}"""


def notebook_json(sources: list[str]) -> str:
    """A Python 3 notebook with one code cell per source, as nbformat 4 JSON."""
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
             for src in sources]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def run_all_cells(page, url: str) -> None:
    """Open the notebook at ``url``, wait for its kernel, run every cell and assert none raised.

    Page errors from loading the application itself are cleared first (Notebook 7.5 raises one settings
    error while it loads); only errors after that, while the widgets work, stay in ``page.errors``.
    """
    page.goto(url)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.wait_for_timeout(1000)
    page.errors.clear()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_CELLS_RAN, timeout=300_000, polling=500)
    errors = page.locator("[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.first.inner_text()


def kernel_json(page, code: str, expected=None, timeout: float = 15.0):
    """The JSON that ``code`` prints in the kernel; with ``expected``, polled until it equals that (the front
    end sends its changes to the kernel in turn, so the last ones may arrive a little later)."""
    deadline = time.time() + timeout
    while True:
        value = json.loads(page.evaluate(KERNEL_PRINT, code))
        if expected is None or value == expected or time.time() > deadline:
            return value
        time.sleep(0.3)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


@contextlib.contextmanager
def browser_page(viewport=(1280, 1000), console_errors_allowed: bool = False):
    """A headless Chromium page; ``page.errors`` collects uncaught errors and ``page.console_errors`` the
    console's error lines. Unless ``console_errors_allowed``, a test that ends without an exception fails if
    the console logged an error (a failed load, a widget's error)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.errors = errors
            console: list[str] = []  # the console's error lines (failed loads among them)
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.console_errors = console
            yield page
            if not console_errors_allowed:
                assert not console, f"the browser console logged errors: {console}"
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(root: Path, log: Path):
    """JupyterLab (which also serves Notebook 7) on a free loopback port, with its own settings."""
    port = _free_port()
    home = root / ".jupyter-home"
    settings = home / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # a notebook saved from the page keeps its widgets' state, as a user's would for `cnnvis export`
    (settings / "@jupyter-widgets" / "jupyterlab-manager").mkdir(parents=True)
    (settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"saveState": True}))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.token=",
           "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
           "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.open_browser=False"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError(f"JupyterLab did not start; see {log}")
                    time.sleep(0.5)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def copy_notebook(name: str, dest: Path) -> Path:
    src = Path(__file__).resolve().parent.parent / "notebooks" / name
    shutil.copy(src, dest / name)
    return dest / name


# -- exported pages (cnnvis export): every widget renders offline -------------------------------------------------
WIDGETS_DONE = "() => document.documentElement.dataset.cnnvisWidgets === 'done'"
# What has not drawn yet: bqplot figures without axis ticks, or with marks but none drawn (a line with a path,
# a bar with a width; a figure with no marks, as AMExplorer's before a run, has nothing to draw), and images with
# a source that have not loaded (AMExplorer's empty slots have none).
UNDRAWN = """() => {
  const lines = (f) => [...f.querySelectorAll('path.line')].some(p => (p.getAttribute('d') || '').length > 10);
  const bars = (f) => [...f.querySelectorAll('rect.bar')].some(r => r.getBBox().width > 0);  // a zero's bar is flat
  const marks = (f) => f.querySelectorAll('path.line, rect.bar').length;
  const drawn = (f) => f.querySelectorAll('.tick').length > 0 && (marks(f) === 0 || lines(f) || bars(f));
  return [
    ...[...document.querySelectorAll('.bqplot.figure')].filter(f => !drawn(f))
      .map(f => 'figure ' + (f.querySelector('.mainheading')?.textContent || '')),
    ...[...document.images].filter(i => i.getAttribute('src') && !(i.complete && i.naturalWidth > 0))
      .map(i => 'image ' + i.className),
  ];
}"""
PAGE_REPORT = """() => ({
  views: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
  outputs: [...document.querySelectorAll('.cnnvis-export-view')].map(o => o.dataset.cnnvisRendered),
  notes: [...document.querySelectorAll('.cnnvis-embed-note, .jupyter-widgets-error-widget')].map(n => n.textContent),
  figures: document.querySelectorAll('.bqplot.figure').length,
  images: document.images.length,
  text: document.body.innerText,
})"""


def open_offline(page):
    """Abort every request that would leave the page (anything but file:, blob: and data:); returns them."""
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "blob:", "data:")):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    return blocked


def assert_every_widget_rendered(page) -> None:
    """On an exported page: every widget output rendered (no note in its place), every bqplot figure drawn,
    every image loaded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_function(WIDGETS_DONE, timeout=60_000)
    try:
        page.wait_for_function(f"() => ({UNDRAWN})().length === 0", timeout=30_000)
    except PlaywrightTimeout:
        pass
    assert not page.evaluate(UNDRAWN), page.evaluate(UNDRAWN)
    report = page.evaluate(PAGE_REPORT)
    assert report["views"] > 0 and report["outputs"] == ["true"] * report["views"], report["outputs"]
    assert not report["notes"], report["notes"]
    assert "needs a live kernel" not in report["text"] and "could not be rendered" not in report["text"]
