"""How results display as widgets: IPython display formatters, registered per result class.

Results never import widgets. Instead, importing :mod:`cnnvis_widgets` inside IPython (a Jupyter kernel,
VS Code, Colab) registers, for every result class, a function with the shell's mimebundle formatter
(``shell.display_formatter.mimebundle_formatter.for_type``). When a result is the last expression of a
cell, or is passed to ``display()``, IPython calls that function, which builds the result's widget and
returns the widget's bundle, with the result's own ``repr`` as the plain-text fallback. In a session
started without IPython nothing is registered and results print as their ``repr``.
"""

from __future__ import annotations

from typing import Callable

from ..deconv.diagnostics import FilterDiagnostics
from ..deconv.evolution import TrainingMonitor, TrainingRecord
from ..deconv.top_images import TopActivations
from ..dissection.result import DissectionResult
from ..inversion.result import InversionResult
from ..optvis.result import AMResult
from .dissection_viewer import DissectionViewer
from .inversion_view import InversionView
from .neuron_gallery import NeuronGallery
from .training_timeline import TrainingTimeline

VIEWS: dict[type, Callable] = {
    TopActivations: NeuronGallery,
    AMResult: NeuronGallery,
    FilterDiagnostics: NeuronGallery,
    TrainingRecord: TrainingTimeline,
    TrainingMonitor: TrainingTimeline,
    InversionResult: InversionView,
    DissectionResult: DissectionViewer,
}
"""Result class -> the widget that shows it (called with the result as its only argument)."""


def view_of(result):
    """The widget that shows ``result`` (a new one each call)."""
    for kind, view in VIEWS.items():
        if isinstance(result, kind):
            return view(result)
    shown = ", ".join(kind.__name__ for kind in VIEWS)
    raise TypeError(f"No widget shows a {type(result).__name__}; widgets show {shown}.")


def widget_bundle(result):
    """The display bundle of ``result``'s widget, with ``repr(result)`` as its text/plain."""
    bundle = view_of(result)._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    data["text/plain"] = repr(result)
    return bundle


def register(shell=None) -> bool:
    """Register :func:`widget_bundle` for every result class with ``shell`` (default: the running IPython).

    Returns whether a shell was there to register with. Called when :mod:`cnnvis_widgets` is imported, and
    by ``%load_ext cnnvis_widgets``.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    formatter = shell.display_formatter.mimebundle_formatter
    for kind in VIEWS:
        formatter.for_type(kind, widget_bundle)
    return True


__all__ = ["VIEWS", "register", "view_of", "widget_bundle"]
