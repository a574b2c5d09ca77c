"""cnnvis-widgets: see inside convolutional networks, in JupyterLab.

Engines (PyTorch) compute the visualizations; results display as widgets::

    import cnnvis_widgets as cv
    model = cv.load_model("mini_alexnet")
    world = cv.datasets.shapeworld(split="val")
    top = cv.top_activations(model, world, "conv5", k=9)
    am = cv.activation_maximization(model, "conv5")
    cv.NeuronGallery(top, am=am)
"""

from . import datasets, dissection, images, inversion, training
from .deconvnet import RULES as deconvnet_rules
from .deconvnet import Projections, deconvnet
from .diagnostics import FilterDiagnostics, filter_diagnostics
from .dissection import DissectionResult, Net2VecResult, dissect, net2vec
from .dissection_viewer import DissectionViewer
from .explorer import AMExplorer
from .filters import filter_images
from .gallery import NeuronGallery
from .inversion import InversionResult, UpconvDecoder, invert, train_upconv
from .inversion_view import InversionView
from .loading import load_model, load_state_dict
from .model import Layer, LayerNotFoundError, Model
from .monitor import TrainingMonitor, TrainingRecord
from .optvis import AMResult, activation_maximization
from .receptive_field import ReceptiveField
from .timeline import TrainingTimeline
from .top_activations import TopActivations, top_activations

__version__ = "0.1.0"

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
    "TopActivations",
    "TrainingMonitor",
    "TrainingRecord",
    "TrainingTimeline",
    "UpconvDecoder",
    "activation_maximization",
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
    "top_activations",
    "train_upconv",
]
