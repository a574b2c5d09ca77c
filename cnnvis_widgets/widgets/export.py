"""Run notebooks headless and export them as one self-contained HTML file whose widgets render offline.

nbclient executes the notebook and stores every widget's state (with its binary buffers, base64) in the
notebook's metadata. nbconvert's ``lab`` template renders the page, less every script it would load from
the network (require.js, the CDN widget embedder, MathJax, Mermaid); the package's own ``export.js`` (built
from ``js/export/``) is inlined in their place. That bundle holds a real widget manager
(``@jupyter-widgets/html-manager``) with the front ends of ipywidgets' controls, bqplot, bqscales and
anywidget, so every widget of the notebook (containers, controls, charts and this package's views) renders
from the saved state with no kernel and no internet, and what links widgets in the browser (``jslink``, the
views' own state) keeps working. The page is one file: the images are the PNG buffers of the saved state,
stored once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat

from .bundle import bundle_source

# nbconvert's lab page with no network scripts; the widget bundle goes in at the end of the body.
_TEMPLATE_NAME = "cnnvis_static_page.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
# Whatever still loads from the network (a template change, an output's own HTML) is dropped too.
_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.IGNORECASE)
_EXTERNAL_STYLESHEET = re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)


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


def _exporter():
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file=_TEMPLATE_NAME,
                        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})])


def notebook_to_html(nb: nbformat.NotebookNode, out: str | Path) -> Path:
    """Write ``nb`` as one HTML file that needs no server and no network to show its widgets."""
    html, _ = _exporter().from_notebook_node(nb)
    html = _EXTERNAL_STYLESHEET.sub("", _EXTERNAL_SCRIPT.sub("", html))
    bundle = bundle_source("export.js").replace("</script", "<\\/script")
    head, body_end, tail = html.rpartition("</body>")
    if not body_end:  # no body element: the bundle goes at the end
        head, tail = html, ""
    html = f'{head}<script type="module">\n{bundle}\n</script>\n{body_end}{tail}'
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
