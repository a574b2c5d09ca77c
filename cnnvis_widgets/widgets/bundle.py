"""The front-end bundles that esbuild builds from ``js/`` into ``cnnvis_widgets/widgets/static/``."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def bundle_source(name: str) -> str:
    """The text of the built bundle ``name`` (e.g. ``"neuron_gallery.js"``)."""
    path = STATIC / name
    if not path.exists():
        raise FileNotFoundError(f"The widget bundle {path} is missing; build it with `npm install && npm run build` "
                                "in the repository (or reinstall the package with pip, which builds it).")
    return path.read_text()
