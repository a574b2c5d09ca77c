"""Results display as their widgets through IPython's display formatters, and never import widgets."""

import numpy as np
import pytest

import cnnvis_widgets as cv
from cnnvis_widgets.widgets import display
from cnnvis_widgets.widgets.display import VIEWS, view_of

WIDGET = "application/vnd.jupyter.widget-view+json"


def small_am() -> cv.AMResult:
    images = np.linspace(0, 1, 2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    return cv.AMResult(layer="conv5", units=np.array([3, 7]), images=images,
                       activations=np.array([1.5, 2.5], dtype=np.float32), history=np.zeros((4, 2), np.float32))


def test_a_result_displays_as_its_widget_with_its_repr_as_text(shown):
    from ipywidgets.widgets.widget import _instances

    am = small_am()
    data = shown(am)
    assert data["text/plain"] == repr(am)
    gallery = _instances[data[WIDGET]["model_id"]]
    assert isinstance(gallery, cv.NeuronGallery)
    assert [t["unit"] for t in gallery.tiles] == [3, 7] and gallery.layer == "conv5"


def test_every_result_class_has_a_widget_and_none_draws_itself():
    results = {cv.TopActivations, cv.AMResult, cv.FilterDiagnostics, cv.TrainingRecord, cv.TrainingMonitor,
               cv.InversionResult, cv.DissectionResult}
    assert set(VIEWS) == results
    for kind in results:  # the widget comes from the formatter, not from a method of the result
        assert not hasattr(kind, "_repr_mimebundle_"), kind.__name__


def test_other_objects_keep_their_own_display(shown):
    assert shown([1, 2]) == {"text/plain": "[1, 2]"}
    with pytest.raises(TypeError, match="No widget shows a list; widgets show TopActivations"):
        view_of([1, 2])


def test_register_without_a_shell_does_nothing(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert display.register() is False


def test_load_ext_registers_with_the_given_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)  # a second, separate shell
    am = small_am()
    assert WIDGET not in shell.display_formatter.format(am)[0]
    cv.load_ipython_extension(shell)
    assert WIDGET in shell.display_formatter.format(am)[0]
