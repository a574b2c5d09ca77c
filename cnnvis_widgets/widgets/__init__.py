"""The widgets: anywidget views and ipywidgets/bqplot containers that show results, and the HTML export.

Widgets render; the engines they call (a gallery computing a layer on demand, the explorer running
activation maximization) live in the method packages. Nothing outside this package imports from it;
results display as their widgets through IPython's display formatters (:mod:`.display`).
"""

from .am_explorer import AMExplorer
from .display import register, view_of
from .dissection_viewer import DissectionViewer
from .inversion_view import InversionView
from .neuron_gallery import NeuronGallery
from .training_timeline import TrainingTimeline

register()

__all__ = ["AMExplorer", "DissectionViewer", "InversionView", "NeuronGallery", "TrainingTimeline", "register",
           "view_of"]
