"""Several processes, one result: the engines under ``torch.distributed``.

Under an initialized process group (``torchrun`` with :func:`join`, or the workers :func:`run_on_devices`
starts for an engine's ``devices=`` argument), :func:`~cnnvis_widgets.top_activations`,
:func:`~cnnvis_widgets.dissect`, :func:`~cnnvis_widgets.net2vec` and
:func:`~cnnvis_widgets.activation_maximization` each do their rank's share (:mod:`.group`) and merge (:mod:`.merge`):
every rank ends with the single process's result. The merges only select, count and gather, so the result is
the single process's bit for bit wherever the ranks compute what one process computes; which results can differ
in rounding when they do not (another number of CPU threads) is said in each engine's ``devices`` argument and in
the README's "Running at scale".
"""

from .group import Group, TorchrunWithoutGroupWarning, current
from .launch import last_run, run_on_devices, worker_pids
from .merge import traffic
from .torchrun import join

__all__ = ["Group", "TorchrunWithoutGroupWarning", "current", "join", "last_run", "run_on_devices", "traffic",
           "worker_pids"]
