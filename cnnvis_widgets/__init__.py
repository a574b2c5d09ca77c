"""cnnvis-widgets: see inside convolutional networks, in JupyterLab.

Engines (PyTorch) compute the visualizations; results display as widgets::

    import cnnvis_widgets as cv
    model = cv.load_model("mini_alexnet")
    world = cv.datasets.shapeworld(split="val")
    top = cv.top_activations(model, world, "conv5", k=9)
    am = cv.activation_maximization(model, "conv5")
    cv.NeuronGallery(top, am=am)

The package flows one way: the ground floor (:mod:`.model`, :mod:`.loading`, :mod:`.images`, :mod:`.resizing`,
:mod:`.receptive_field`, :mod:`.datasets`, :mod:`.zoo`) feeds the method families (:mod:`.optvis`,
:mod:`.deconv`, :mod:`.inversion`, :mod:`.dissection`), whose results :mod:`.widgets` shows.
"""

from . import cache, datasets, deconv, dissection, images, inversion, optvis, widgets, zoo
from .deconv import RULES as deconvnet_rules
from .deconv import (FilterDiagnostics, Projections, TopActivations, TrainingMonitor, TrainingRecord, deconvnet,
                     filter_diagnostics, filter_images, top_activations)
from .dissection import DissectionResult, Net2VecResult, dissect, net2vec
from .inversion import InversionResult, UpconvDecoder, invert, train_upconv
from .loading import load_model, load_state_dict
from .model import Layer, LayerNotFoundError, Model
from .normalization import normalized
from .optvis import AMResult, activation_maximization, feature_accentuation
from .receptive_field import ReceptiveField
from .resizing import ResizePolicy
from .widgets import AMExplorer, DissectionViewer, InversionView, NeuronGallery, TrainingTimeline

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext cnnvis_widgets``: show results as widgets in this shell (importing the package does it too)."""
    widgets.register(ipython)


__all__ = [
    "AMExplorer",
    "AMResult",
    "DissectionResult",
    "DissectionViewer",
    "FilterDiagnostics",
    "InversionResult",
    "InversionView",
    "Layer",
    "LayerNotFoundError",
    "Model",
    "Net2VecResult",
    "NeuronGallery",
    "Projections",
    "ReceptiveField",
    "ResizePolicy",
    "TopActivations",
    "TrainingMonitor",
    "TrainingRecord",
    "TrainingTimeline",
    "UpconvDecoder",
    "activation_maximization",
    "feature_accentuation",
    "datasets",
    "deconvnet",
    "deconvnet_rules",
    "dissect",
    "filter_diagnostics",
    "filter_images",
    "invert",
    "load_model",
    "load_state_dict",
    "net2vec",
    "normalized",
    "top_activations",
    "train_upconv",
]
