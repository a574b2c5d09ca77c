"""Run notebooks headless and export them as self-contained HTML whose widgets render from saved state.

nbclient executes the notebook and stores every widget's state (with its binary buffers) in the
notebook's metadata; nbconvert renders the page; then every script that would load from the network is
dropped and the package's own ``export.js`` (built from ``js/export/``) is inlined, which renders each
anywidget from its saved state with no kernel and no internet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat

from .bundle import bundle_source

_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.IGNORECASE)


def execute_notebook(path: str | Path, timeout: int = 1200, env: dict[str, str] | None = None,
                     kernel_name: str = "python3") -> nbformat.NotebookNode:
    """Execute a notebook in its own folder and return it with outputs and widget state."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, store_widget_state=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env={**os.environ, **(env or {})})
    return nb


def notebook_to_html(nb: nbformat.NotebookNode, out: str | Path) -> Path:
    """Write ``nb`` as one HTML file that needs no server and no network to show its widgets."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    html = _EXTERNAL_SCRIPT.sub("", html)
    embed = bundle_source("export.js").replace("</script", "<\\/script")
    html = html.replace("</body>", f'<script type="module">\n{embed}\n</script>\n</body>', 1)
    out = Path(out)
    out.write_text(html, encoding="utf-8")
    return out


def tour_notebook() -> Path:
    """The tour notebook: shipped inside the package, or in the repository's ``notebooks/``."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "notebooks" / "00_tour.ipynb", package.parent / "notebooks" / "00_tour.ipynb"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("The tour notebook 00_tour.ipynb was not found; reinstall cnnvis-widgets.")


def run_tour(out: str | Path, small: bool = False, timeout: int = 1200) -> Path:
    """Execute the tour headless and write it to ``out`` as self-contained HTML."""
    env = {"CNNVIS_SMALL": "1"} if small else {}
    return notebook_to_html(execute_notebook(tour_notebook(), timeout=timeout, env=env), out)
