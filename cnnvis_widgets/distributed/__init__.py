"""Several processes, one result: the engines under ``torch.distributed``.

Under an initialized process group (``torchrun``, or the workers :func:`run_on_devices` starts for an
engine's ``devices=`` argument), :func:`~cnnvis_widgets.top_activations`, :func:`~cnnvis_widgets.dissect`,
:func:`~cnnvis_widgets.net2vec` and :func:`~cnnvis_widgets.activation_maximization` each do their rank's share (:mod:`.group`) and merge
exactly (:mod:`.merge`): every rank ends with the single process's result.
"""

from .group import Group, current
from .launch import last_run, run_on_devices
from .merge import traffic

__all__ = ["Group", "current", "last_run", "run_on_devices", "traffic"]
