"""Feature evolution during training: chosen units' strongest inputs, recorded epoch by epoch.

Zeiler & Fergus 2014 ("Visualizing and Understanding Convolutional Networks", §4.2, Fig. 4) follow a
few units of every layer through training: at chosen epochs, the strongest activation of each unit
over a fixed probe set, shown as the image crop under its receptive field and the DeconvNet projection
of that activation. Lower layers settle within a few epochs; upper layers only after many.

:class:`TrainingMonitor` records exactly that while a network trains (or from saved checkpoints), plus
scalar metrics such as loss and accuracy, and optionally an activation-maximization image per unit.
It writes as it goes, in the format of :mod:`~cnnvis_widgets.deconv.record_format`, so a kernel that dies
mid-training leaves every finished epoch readable. A new
monitor on the same folder continues the record. :class:`TrainingRecord` reads a folder back;
:class:`~cnnvis_widgets.widgets.training_timeline.TrainingTimeline` shows it.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..loading import _load_into, load_model, load_state_dict
from ..model import Model
from ..optvis import activation_maximization
from ..zoo import mini_alexnet as mini
from .record_format import FORMAT, FORMAT_VERSION, INDEX_NAME, Pathish, epoch_file, json_number, read_index, write_atomically
from .rules import RULES
from .top_images import top_activations


def _is_mini_alexnet(module: nn.Module) -> bool:
    """Whether ``module`` has MiniAlexNet's layout (``zoo.mini_alexnet.mini_alexnet``, any of its options): a
    Sequential of conv1..conv5 and fc6..fc8 on 3-channel input, whose fc6 fixes the 64 x 64 input size."""
    if not isinstance(module, nn.Sequential):
        return False
    children = dict(module.named_children())
    layout = [name for name in children if name.startswith(("conv", "fc"))]
    conv1 = children.get("conv1")
    return layout == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"] and \
        isinstance(conv1, nn.Conv2d) and conv1.in_channels == mini.INPUT_SIZE[0]


class TrainingRecord:
    """A recorded training run, read from its folder (see :class:`TrainingMonitor`).

    Zeiler & Fergus 2014, §4.2 / Fig. 4: for each recorded epoch and each chosen unit, the strongest
    input over the probe set and its DeconvNet projection.

    Attributes:
        directory: the folder.
        layer: the layer the units belong to.
        units: the unit indices, in row order.
        model_name: the network's name.
        k: top images kept per unit and epoch.
        epochs: the epochs with recorded images, ascending.
        metric_epochs: the epochs with metrics, ascending.
        metrics: metric name -> values aligned with ``metric_epochs`` (NaN where an epoch lacks it).

    Arrays of one recorded epoch: :meth:`images`, :meth:`projections`, :meth:`am`, :meth:`values`,
    :meth:`indices`. Displays as a :class:`~cnnvis_widgets.widgets.training_timeline.TrainingTimeline`.
    """

    def __init__(self, directory: Pathish):
        self.directory = Path(directory)
        index = read_index(self.directory)
        self._index = index
        self.layer: str = index["layer"]
        self.units: list[int] = [int(u) for u in index["units"]]
        self.model_name: str = index.get("model_name") or ""
        self.k: int = int(index.get("k", 1))
        self.projection_rule: str | None = index.get("projection_rule")
        self.am_steps: int = int(index.get("am_steps", 0))
        self.num_images: int | None = index.get("num_images")
        self.epochs: list[int] = sorted(int(e) for e in index.get("epochs", []))
        entries = sorted(index.get("metrics", []), key=lambda entry: entry["epoch"])
        self.metric_epochs: list[int] = [int(entry["epoch"]) for entry in entries]
        names = list(dict.fromkeys(name for entry in entries for name in entry if name != "epoch"))
        self.metrics: dict[str, list[float]] = {
            name: [float("nan") if entry.get(name) is None else float(entry[name]) for entry in entries]
            for name in names}
        self._arrays: dict[int, dict[str, np.ndarray]] = {}

    @classmethod
    def load(cls, directory: Pathish) -> "TrainingRecord":
        """Read the record in ``directory`` (written by :class:`TrainingMonitor`)."""
        return cls(directory)

    @classmethod
    def from_mini_alexnet(cls, dataset, layer: str, units: Sequence[int], directory: Pathish,
                          **options) -> "TrainingRecord":
        """Record the shipped MiniAlexNet training run: its checkpoints after epochs
        ``mini_alexnet.CHECKPOINT_EPOCHS`` (0, 1, 2, 5, 10) and the final weights (epoch 12), with the
        training loss and validation accuracy of every epoch from ``weights/mini_alexnet.json``.

        Args:
            dataset: the probe images (e.g. ``cv.datasets.shapeworld(split="val")`` or a ``Subset`` of it).
            layer, units: which units to follow.
            directory: where to write the record.
            **options: passed to :class:`TrainingMonitor` (``k``, ``am_steps``, ...).
        """
        log = json.loads((mini.WEIGHTS_DIR / "mini_alexnet.json").read_text())["log"]
        metrics = {int(e): {"train_loss": loss, "val_accuracy": acc}
                   for e, loss, acc in zip(log["epoch"], log["train_loss"], log["val_accuracy"])}
        final = int(log["epoch"][-1])
        checkpoints = [(e, lambda e=e: load_model("mini_alexnet", epoch=e)) for e in mini.CHECKPOINT_EPOCHS]
        checkpoints.append((final, lambda: load_model("mini_alexnet")))
        options.setdefault("name", "MiniAlexNet")
        return TrainingMonitor.from_checkpoints(checkpoints, dataset, layer, units, directory, metrics=metrics,
                                                **options)

    def __repr__(self) -> str:
        return (f"TrainingRecord({str(self.directory)!r}, layer={self.layer!r}, units={self.units}, "
                f"epochs={self.epochs})")

    # -- arrays of one epoch ------------------------------------------------------------------------------
    def _epoch_arrays(self, epoch: int) -> dict[str, np.ndarray]:
        epoch = int(epoch)
        if epoch not in self.epochs:
            raise KeyError(f"Epoch {epoch} was not recorded; recorded epochs: {self.epochs}.")
        if epoch not in self._arrays:
            from safetensors.numpy import load_file

            path = self.directory / epoch_file(epoch)
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing although {INDEX_NAME} lists epoch {epoch}; the "
                                        "record's folder was changed by hand. Record that epoch again.")
            self._arrays[epoch] = load_file(str(path))
        return self._arrays[epoch]

    def images(self, epoch: int) -> np.ndarray:
        """uint8 [units, k, C, h, w]: each unit's top image crops (under its receptive field) at ``epoch``."""
        return self._epoch_arrays(epoch)["images"]

    def projections(self, epoch: int) -> np.ndarray | None:
        """uint8 [units, k, C, h, w]: the DeconvNet projections of those activations (mid-grey = zero), or
        None when the record was made without projections."""
        return self._epoch_arrays(epoch).get("projections")

    def am(self, epoch: int) -> np.ndarray | None:
        """uint8 [units, C, H, W]: each unit's activation-maximization image at ``epoch``, or None when the
        record was made with ``am_steps=0``."""
        return self._epoch_arrays(epoch).get("am")

    def am_values(self, epoch: int) -> np.ndarray | None:
        """float32 [units]: the objective each AM image reached, or None."""
        return self._epoch_arrays(epoch).get("am_values")

    def values(self, epoch: int) -> np.ndarray:
        """float32 [units, k]: the activation values of the top images (spatial maximum of the unit)."""
        return self._epoch_arrays(epoch)["values"]

    def indices(self, epoch: int) -> np.ndarray:
        """int64 [units, k]: the probe-set indices of the top images."""
        return self._epoch_arrays(epoch)["indices"]

    def metrics_at(self, epoch: int) -> dict[str, float]:
        """The metrics logged for ``epoch`` (empty when none were)."""
        if epoch not in self.metric_epochs:
            return {}
        i = self.metric_epochs.index(epoch)
        return {name: values[i] for name, values in self.metrics.items()}


class TrainingMonitor:
    """Record chosen units of a layer while a network trains (Zeiler & Fergus 2014, §4.2, Fig. 4).

    At every recorded epoch, for each unit: the top-``k`` probe images by the unit's spatial maximum, as
    crops under its receptive field (uint8), the DeconvNet projection of each activation cut the same way
    (:func:`~cnnvis_widgets.top_activations`), the activation values, and, with ``am_steps > 0``, an
    activation-maximization image. Metrics (loss, accuracy, anything numeric) are stored for every epoch
    they are given, recorded or not.

    Args:
        dataset: the fixed probe images (anything :func:`~cnnvis_widgets.top_activations` takes). Keep it
            small: every recorded epoch runs the layer over all of it.
        layer: a layer name of the network.
        units: the unit indices to follow.
        directory: the folder to write; an existing record there (same layer, units and ``k``) is continued.
        epochs: the epochs whose images to record (None: every epoch).
        k: top images per unit and epoch.
        am_steps: optimization steps of an activation-maximization image per unit and epoch (0: none).
        am_options: more keyword arguments of :func:`~cnnvis_widgets.activation_maximization` (``preset``, ...).
        projections: the backward rule of the projections (``"deconvnet"``, ``"guided"``, ``"gradient"``), or
            None for none.
        model: a :class:`~cnnvis_widgets.Model` whose normalization, input size, resize policy, name and class
            names wrap the bare ``nn.Module`` objects given to :meth:`record` (and whose architecture
            :meth:`from_checkpoints` loads weight files into).
        mean, std, input_size, name: the same, one by one (they override ``model``'s). A bare module needs all
            three of mean, std and input_size, from here or from ``model``; only MiniAlexNet's own modules
            (``cnnvis_widgets.zoo.mini_alexnet``'s layout) are recognized without them and take its settings.
            Recording a :class:`~cnnvis_widgets.Model` uses that model's own settings.
        batch_size: probe images per forward pass.

    Use :meth:`record` in a training loop, or :attr:`callback` as
    ``cnnvis_widgets.zoo.mini_alexnet_training.train_mini_alexnet(on_epoch=monitor.callback)``. Recording never changes the
    network (its train/eval modes and ``requires_grad`` flags are restored) nor the global random state, so a
    monitored run trains to the same weights as an unmonitored one.
    """

    def __init__(self, dataset, layer: str, units: Sequence[int], directory: Pathish,
                 epochs: Iterable[int] | None = None, k: int = 1, am_steps: int = 0,
                 am_options: Mapping | None = None, projections: str | None = "deconvnet", model: Model | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 input_size: tuple[int, int, int] | None = None, name: str | None = None, batch_size: int = 64):
        if isinstance(units, (int, np.integer)):
            units = [int(units)]
        self.units = [int(u) for u in units]
        if not self.units:
            raise ValueError("units is empty; pass the unit indices to follow, e.g. units=[0, 1, 2].")
        if len(set(self.units)) != len(self.units):
            raise ValueError(f"units has repeats: {self.units}; list each unit once.")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        if am_steps < 0:
            raise ValueError(f"am_steps must be >= 0, got {am_steps}.")
        if projections is not None:
            if projections not in RULES:
                raise ValueError(f"projections must be None or one of {', '.join(RULES)}; got {projections!r}.")
        if model is not None and not isinstance(model, Model):
            raise TypeError(f"model= takes a cv.Model (a template for wrapping bare modules), got {type(model).__name__}.")
        self.dataset = dataset
        self.layer = str(layer)
        self.directory = Path(directory)
        self.epochs = None if epochs is None else sorted({int(e) for e in epochs})
        self.k = int(k)
        self.am_steps = int(am_steps)
        self.am_options = dict(am_options or {})
        self.projection_rule = projections
        self.batch_size = int(batch_size)
        self.template = model
        # the preprocessing of bare modules: given, else the template's, else unknown (None; see _settings_for)
        self.mean = tuple(mean) if mean is not None else model.mean if model is not None else None
        self.std = tuple(std) if std is not None else model.std if model is not None else None
        self.input_size = tuple(input_size) if input_size is not None else \
            model.input_size if model is not None else None
        self._known = {key for key, value in (("mean", mean), ("std", std), ("input_size", input_size))
                       if value is not None or model is not None}
        self.name = name if name is not None else model.name if model is not None else None
        self._fit = model.fit if model is not None else "squash"
        self._wrapped: Model | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.directory.mkdir(parents=True, exist_ok=True)
        self._index = self._open_index()
        if model is not None:
            self._check_units(model)

    # -- the index ----------------------------------------------------------------------------------------
    def _open_index(self) -> dict:
        if not (self.directory / INDEX_NAME).exists():
            return {"format": FORMAT, "version": FORMAT_VERSION, "layer": self.layer, "units": self.units,
                    "model_name": self.name or "", "k": self.k, "projection_rule": self.projection_rule,
                    "am_steps": self.am_steps, "num_images": None, "epochs": [], "metrics": []}
        index = read_index(self.directory)
        mine = {"layer": self.layer, "units": self.units, "k": self.k}
        theirs = {"layer": index.get("layer"), "units": index.get("units"), "k": index.get("k", 1)}
        if mine != theirs:
            raise ValueError(
                f"{self.directory} already holds a record of layer {theirs['layer']!r}, units {theirs['units']}, "
                f"k={theirs['k']}; this monitor follows layer {self.layer!r}, units {self.units}, k={self.k}. "
                "Use a new directory, or the same layer, units and k to continue that record.")
        if self.name is None and index.get("model_name"):
            self.name = index["model_name"]
        return index

    def _write_index(self) -> None:
        text = json.dumps(self._index, indent=1) + "\n"
        write_atomically(self.directory / INDEX_NAME, lambda tmp: Path(tmp).write_text(text))

    @property
    def recorded_epochs(self) -> list[int]:
        """The epochs whose images are on disk, ascending."""
        return sorted(self._index["epochs"])

    @property
    def result(self) -> TrainingRecord:
        """What is on disk now, as a :class:`TrainingRecord`."""
        return TrainingRecord(self.directory)

    # -- recording ----------------------------------------------------------------------------------------
    def wants(self, epoch: int) -> bool:
        """Whether :meth:`record` stores images at ``epoch``."""
        return self.epochs is None or int(epoch) in self.epochs

    def log(self, epoch: int, **metrics) -> None:
        """Store metrics for ``epoch`` without recording images (NaN and infinities are stored as null)."""
        if not metrics:
            return
        with self._lock:
            self._merge_metrics(int(epoch), metrics)
            self._write_index()
        self._notify()

    def _merge_metrics(self, epoch: int, metrics: Mapping) -> None:
        values = {str(name): json_number(value) for name, value in metrics.items()}
        entries = self._index["metrics"]
        for entry in entries:
            if entry["epoch"] == epoch:
                entry.update(values)
                break
        else:
            entries.append({"epoch": epoch, **values})
            entries.sort(key=lambda entry: entry["epoch"])

    def record(self, epoch: int, model: Model | nn.Module, **metrics) -> bool:
        """Record ``epoch``: images of the chosen units when ``epoch`` is one of ``epochs``, and ``metrics``.

        ``model`` is a :class:`~cnnvis_widgets.Model` or a bare ``nn.Module`` (wrapped with the monitor's
        normalization and input size). It is not changed. An epoch recorded before is replaced. Returns
        whether images were recorded.
        """
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}.")
        if not self.wants(epoch):
            self.log(epoch, **metrics)
            return False
        wrapped = self._wrap(model)
        self._check_units(wrapped)
        arrays, num_images = self._compute(wrapped)
        from safetensors.numpy import save_file

        header = {"cnnvis": json.dumps({"kind": "TrainingRecordEpoch", "epoch": epoch, "layer": self.layer,
                                        "units": self.units})}
        with self._lock:
            write_atomically(self.directory / epoch_file(epoch),
                              lambda tmp: save_file(arrays, tmp, metadata=header))
            if epoch not in self._index["epochs"]:
                self._index["epochs"] = sorted([*self._index["epochs"], epoch])
            if not self._index.get("model_name"):
                self._index["model_name"] = self.name or wrapped.name
            self._index["num_images"] = num_images
            if metrics:
                self._merge_metrics(epoch, metrics)
            self._write_index()
        self._notify()
        return True

    def _wrap(self, model: Model | nn.Module) -> Model:
        if isinstance(model, Model):
            return model
        if not isinstance(model, nn.Module):
            raise TypeError(f"record() takes a cv.Model or an nn.Module, got {type(model).__name__}.")
        if self._wrapped is None or self._wrapped.module is not model:
            classes = self.template.classes if self.template is not None else None
            self._wrapped = Model(model, **self._settings_for(model), name=self.name, classes=classes, fit=self._fit)
        return self._wrapped

    def _settings_for(self, module: nn.Module) -> dict:
        """mean, std and input_size of a bare module: the monitor's, MiniAlexNet's for its own layout, else refused."""
        settings = {"mean": self.mean, "std": self.std, "input_size": self.input_size}
        missing = [key for key in settings if key not in self._known]
        if missing and _is_mini_alexnet(module):
            defaults = {"mean": mini.MEAN, "std": mini.STD, "input_size": mini.INPUT_SIZE}
            settings.update({key: defaults[key] for key in missing})
        elif missing:
            raise ValueError(
                f"record() got a bare {type(module).__name__}, and the monitor does not know how it preprocesses its "
                f"input ({', '.join(missing)} not given). Pass them to the monitor, cv.TrainingMonitor(..., "
                f"model=cv.Model(net, mean=..., std=..., input_size=(C, H, W))) or mean=, std=, input_size=, or "
                f"record a cv.Model: monitor.record(epoch, cv.Model(net, mean=..., std=..., input_size=...)). "
                f"Only MiniAlexNet's own modules are recognized without them.")
        return settings

    def _check_units(self, model: Model) -> None:
        info = model.layer(self.layer)  # a wrong name raises, listing the valid ones
        bad = [u for u in self.units if not 0 <= u < (info.units or 0)]
        if bad:
            raise ValueError(f"unit {bad[0]} is out of range: {self.layer} has {info.units} units, "
                             f"numbered 0..{(info.units or 0) - 1}.")

    def _compute(self, model: Model) -> tuple[dict[str, np.ndarray], int]:
        """The epoch's arrays. Runs under ``fork_rng`` so the training's random stream is untouched."""

        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            top = top_activations(model, self.dataset, self.layer, k=self.k, batch_size=self.batch_size,
                                  progress=False, projections=self.projection_rule)
            rows = np.asarray(self.units)
            arrays = {"units": rows.astype(np.int64),
                      "images": np.ascontiguousarray(top.crops[rows]),
                      "values": np.ascontiguousarray(top.values[rows].astype(np.float32)),
                      "indices": np.ascontiguousarray(top.indices[rows].astype(np.int64)),
                      "boxes": np.ascontiguousarray(top.boxes[rows].astype(np.int64))}
            if top.projections is not None:
                arrays["projections"] = np.ascontiguousarray(top.projections[rows])
            if self.am_steps:
                am = activation_maximization(model, self.layer, units=self.units, steps=self.am_steps,
                                             progress=False, **self.am_options)
                images = am.images if am.images.ndim == 4 else am.images[:, 0]
                arrays["am"] = np.ascontiguousarray((np.clip(images, 0, 1) * 255).round().astype(np.uint8))
                activations = am.activations if am.activations.ndim == 1 else am.activations[:, 0]
                arrays["am_values"] = np.ascontiguousarray(activations.astype(np.float32))
        return arrays, int(top.num_images)

    @property
    def callback(self) -> Callable[[int, nn.Module, object], None]:
        """``on_epoch(epoch, net, log)`` for :func:`cnnvis_widgets.zoo.mini_alexnet_training.train_mini_alexnet`: records the
        epoch with the log's latest ``train_loss`` and ``val_accuracy`` (and any other list it holds)."""

        def on_epoch(epoch: int, net: nn.Module, log) -> None:
            fields = log if isinstance(log, Mapping) else vars(log)
            metrics = {name: values[-1] for name, values in fields.items()
                       if name != "epoch" and isinstance(values, list) and values}
            self.record(epoch, net, **metrics)

        return on_epoch

    @classmethod
    def from_checkpoints(cls, checkpoints: Iterable[tuple[int, object]], dataset, layer: str,
                         units: Sequence[int], directory: Pathish,
                         metrics: Mapping[int, Mapping[str, float]] | None = None, **options) -> TrainingRecord:
        """Record a training run from saved checkpoints, one after another.

        Args:
            checkpoints: ``(epoch, checkpoint)`` pairs; a checkpoint is a :class:`~cnnvis_widgets.Model`, a
                path to a weight file (``.safetensors``, or a torch state dict read with ``weights_only=True``)
                loaded into the architecture of ``model=`` (default MiniAlexNet), or a function returning a
                ``Model`` (called when its turn comes, so only one network is in memory at a time).
            dataset, layer, units, directory: as for :class:`TrainingMonitor`.
            metrics: epoch -> {name: value}, for recorded epochs and any others (e.g. every epoch's loss).
            **options: more :class:`TrainingMonitor` arguments.

        Returns the :class:`TrainingRecord`.
        """
        monitor = cls(dataset, layer, units, directory, **options)
        metrics = {int(e): dict(m) for e, m in (metrics or {}).items()}
        pairs = [(int(e), c) for e, c in checkpoints]
        recorded = {e for e, _ in pairs}
        with monitor._lock:
            for epoch, values in metrics.items():
                if epoch not in recorded and values:
                    monitor._merge_metrics(epoch, values)
            monitor._write_index()
        for epoch, checkpoint in pairs:
            monitor.record(epoch, monitor._checkpoint_model(checkpoint), **metrics.get(epoch, {}))
        return monitor.result

    def _checkpoint_model(self, checkpoint) -> Model:
        if isinstance(checkpoint, Model):
            return checkpoint
        if callable(checkpoint) and not isinstance(checkpoint, nn.Module):
            return self._checkpoint_model(checkpoint())
        if isinstance(checkpoint, nn.Module):
            return self._wrap(checkpoint)
        if isinstance(checkpoint, (str, os.PathLike)):
            if self.template is None:
                return load_model("mini_alexnet", weights=checkpoint, **({"name": self.name} if self.name else {}))
            module = copy.deepcopy(self.template.module)
            _load_into(module, load_state_dict(checkpoint), str(checkpoint))
            return Model(module.eval(), mean=self.mean, std=self.std, input_size=self.input_size,
                         name=self.name or self.template.name, classes=self.template.classes, fit=self._fit)
        raise TypeError(f"A checkpoint is a cv.Model, an nn.Module, a weight-file path or a function returning a "
                        f"cv.Model; got {type(checkpoint).__name__}.")

    # -- live views ---------------------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every write (a live view refreshes this way)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        self._listeners = [c for c in self._listeners if c != callback]

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def __repr__(self) -> str:
        return (f"TrainingMonitor({str(self.directory)!r}, layer={self.layer!r}, units={self.units}, "
                f"recorded={self.recorded_epochs})")


__all__ = ["TrainingMonitor", "TrainingRecord"]
