"""DeconvNet and what Zeiler & Fergus 2014 ("Visualizing and Understanding Convolutional Networks") show
with it: projections of single activations back to pixels (:mod:`.projection`, with the backward rules of
:mod:`.rules`), every unit's top images with their crops and projections (:mod:`.top_activations`), the
first layer's filters as pictures (:mod:`.filter_pictures`) and their diagnostics (:mod:`.diagnostics`),
and feature evolution during training (:mod:`.evolution`, stored as :mod:`.record_format`).
"""

from .diagnostics import FilterDiagnostics, filter_diagnostics
from .evolution import TrainingMonitor, TrainingRecord
from .filter_pictures import filter_images
from .projection import Projections, deconvnet, display_projection
from .rules import RULES, rectifier_rule
from .top_images import TopActivations, top_activations

__all__ = ["RULES", "FilterDiagnostics", "Projections", "TopActivations", "TrainingMonitor", "TrainingRecord",
           "deconvnet", "display_projection", "filter_diagnostics", "filter_images", "rectifier_rule",
           "top_activations"]
