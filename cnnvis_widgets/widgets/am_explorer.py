"""``AMExplorer``: activation maximization run live, with its settings, images and objective curves.

Olah, Mordvintsev & Schubert 2017, "Feature Visualization" (Distill, https://distill.pub/2017/feature-visualization/):
watch the images that maximize a unit form while the optimization runs, and change the objective, the
parameterization preset and the regularizers between runs.

The optimization runs in a background thread, so the kernel stays free to receive the view's "stop"
message; every few steps the thread sends the current images (PNG bytes, as binary buffers) to the view
and the objective history to a bqplot chart.
"""

from __future__ import annotations

import threading
from typing import Sequence

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets
from torch import nn

from ..images import png_bytes
from ..optvis.engine import activation_maximization
from ..optvis.presets import PRESETS, get_preset
from .bundle import bundle_source

OBJECTIVES = ["channel", "neuron", "logit"]

# Mid-lightness colours that read on both a white and a near-black background.
PALETTE = ["#3d8bd9", "#f28e2b", "#e15759", "#4bb3a8", "#59a14f", "#d4b12f", "#b07aa1", "#ff7fa0", "#a6784f",
           "#8c8cd9"]

# Settings the view edits; `AMExplorer` reads and writes them as attributes too.
SETTINGS = ("layer", "units", "objective", "preset", "steps", "lr", "l2", "tv", "blur_every", "n_per_unit",
            "diversity", "seed")
# What the kernel reports; read-only attributes of `AMExplorer`.
STATE = ("running", "step", "total_steps", "images", "image_units", "image_labels", "status")


class _AMExplorerView(anywidget.AnyWidget):
    """The controls and the image strip of an :class:`AMExplorer` (front end: ``js/am_explorer.js``).

    Messages from the view: ``{"type": "run"}`` and ``{"type": "stop"}``.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    unit_count = traitlets.Int(0).tag(sync=True)
    units = traitlets.List(traitlets.Int(), [0]).tag(sync=True)
    objectives = traitlets.List(traitlets.Unicode(), OBJECTIVES).tag(sync=True)
    objective = traitlets.Unicode("channel").tag(sync=True)
    presets = traitlets.List(traitlets.Unicode()).tag(sync=True)
    preset = traitlets.Unicode("lucid").tag(sync=True)
    steps = traitlets.Int(512).tag(sync=True)
    lr = traitlets.Float(0.05).tag(sync=True)
    l2 = traitlets.Float(0.0).tag(sync=True)
    tv = traitlets.Float(0.0).tag(sync=True)
    blur_every = traitlets.Int(0).tag(sync=True)
    pixel_param = traitlets.Bool(False).tag(sync=True)  # blur_every applies (the preset optimizes pixels)
    n_per_unit = traitlets.Int(1).tag(sync=True)
    diversity = traitlets.Float(0.0).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    total_steps = traitlets.Int(0).tag(sync=True)
    images = traitlets.List().tag(sync=True)
    image_units = traitlets.List(traitlets.Int()).tag(sync=True)
    image_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    image_layer = traitlets.Unicode("").tag(sync=True)
    image_size = traitlets.Int(64).tag(sync=True)
    scale = traitlets.Int(3).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)


class AMExplorer(ipywidgets.VBox):
    """Activation maximization with live images and objective curves (Olah et al. 2017, "Feature Visualization").

    Displays as one output: the controls and images (``self.view``, an anywidget) above a bqplot chart of
    each image's objective per step (``self.chart``). Pick a layer, units ("0, 3, 7"), the objective
    (``"logit"`` targets the model's output, the last layer), a preset of :mod:`~cnnvis_widgets.optvis.presets`
    (choosing one resets ``lr``, ``l2``, ``tv`` and ``blur_every`` to its values) and the regularizers, then
    Run. Stop ends the optimization after the current step and keeps its images. A Run while one is running
    is ignored.

    Args:
        model: a :class:`~cnnvis_widgets.Model`; its module is never modified (the engine optimizes through
            a copy).
        layer: the target layer (default: the last conv layer).
        units: unit indices to optimize, one image each (``n_per_unit`` more with diversity).
        objective: ``"channel"``, ``"neuron"`` or ``"logit"``.
        preset: ``"lucid"``, ``"yosinski"``, ``"simonyan"``, ``"dgn"`` or ``"maco"``.
        steps: optimization steps (default: the preset's).
        snapshot_every: steps between image updates.
        scale: on-screen magnification of the images.
        generator: the image generator of the ``"dgn"`` preset (DGN-AM, Nguyen et al. 2016), e.g. an
            UpconvNet decoder from ``cv.train_upconv``; MiniAlexNet's shipped generator by default.
        **settings: ``lr``, ``l2``, ``tv``, ``blur_every``, ``n_per_unit``, ``diversity``, ``seed``.

    Also from Python: :meth:`run`, :meth:`stop`, :meth:`wait`, :attr:`result`; the settings above and
    ``status``, ``running``, ``step``, ``images`` are attributes.
    """

    def __init__(self, model, layer: str | None = None, units: Sequence[int] = (0,), objective: str = "channel",
                 preset: str = "lucid", steps: int | None = None, snapshot_every: int = 8, scale: int = 3,
                 generator=None, **settings):
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"Unknown setting(s) {', '.join(unknown)}; AMExplorer takes {', '.join(SETTINGS)}.")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}.")
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be >= 1.")
        self.model = model
        self.generator = generator
        self.snapshot_every = int(snapshot_every)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._result = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

        layers = [l.name for l in model.layers if l.output_shape]
        if not layers:
            raise ValueError("The model has no layers with an output to optimize.")
        self._output_layer = layers[-1]
        if objective == "logit":
            layer = self._output_layer
        elif layer is None:
            convs = [l.name for l in model.layers_of(nn.Conv2d) if l.output_shape]
            layer = convs[-1] if convs else layers[-1]
        if layer not in layers:
            model.layer(layer)  # an unknown name raises, listing the valid ones
            raise ValueError(f"Layer {layer!r} has no recorded output; pick one of {layers}.")
        config = get_preset(preset)
        self.view = _AMExplorerView(
            _esm=bundle_source("am_explorer.js"), title=getattr(model, "name", ""), layers=layers,
            layer=layer, presets=[p for p in PRESETS if p != "accentuation"],  # accentuation needs a photo
            preset=preset, objective=objective, units=[int(u) for u in units],
            steps=int(config.steps if steps is None else steps), image_size=int(model.input_size[-1]),
            scale=int(scale), **self._preset_values(config))
        for name, value in settings.items():
            setattr(self.view, name, value)
        self.view.total_steps = self.view.steps
        self._on_layer()
        self._validate()

        self._x = bqplot.LinearScale()
        self._y = bqplot.LinearScale()
        self.chart = bqplot.Figure(
            marks=[], axes=[bqplot.Axis(scale=self._x, label="step", grid_lines="none"),
                            bqplot.Axis(scale=self._y, label="objective", side="left",
                                        grid_lines="dashed")],
            title="objective per step", legend_location="top-left", animation_duration=0,
            fig_margin={"top": 36, "bottom": 44, "left": 64, "right": 16},
            layout=ipywidgets.Layout(width="100%", max_width="720px", height="260px"))

        self.view.observe(self._on_layer, names="layer")
        self.view.observe(self._on_objective, names="objective")
        self.view.observe(self._on_preset, names="preset")
        self.view.observe(lambda _: self._validate(), names=["units", "unit_count", "n_per_unit", "diversity"])
        self.view.on_msg(self._on_msg)
        super().__init__(children=[self.view, self.chart])

    # -- settings --------------------------------------------------------------------------------------
    @staticmethod
    def _preset_values(config) -> dict:
        return dict(lr=float(config.lr), l2=float(config.l2), tv=float(config.tv), blur_every=int(config.blur_every),
                    pixel_param=config.param == "pixel")

    def _on_layer(self, change=None):
        layer = self.model.layers[self.view.layer]
        self.view.unit_count = int(layer.units or 0)
        if self.view.objective == "logit" and self.view.layer != self._output_layer:
            self.view.objective = "channel"

    def _on_objective(self, change):
        if change["new"] == "logit" and self.view.layer != self._output_layer:
            self.view.layer = self._output_layer

    def _on_preset(self, change):
        try:
            values = self._preset_values(get_preset(change["new"]))
        except ValueError as err:
            self.view.status = f"error: {err}"
            return
        with self.view.hold_trait_notifications():
            for name, value in values.items():
                setattr(self.view, name, value)

    def _validate(self) -> str | None:
        """The first problem with the settings (also shown in ``status``), or None."""
        v = self.view
        problem = None
        if not v.units:
            problem = "enter at least one unit, e.g. 0, 3, 7"
        else:
            bad = [u for u in v.units if not 0 <= u < v.unit_count]
            if bad:
                problem = (f"unit {bad[0]} is out of range: {v.layer} has {v.unit_count} units, "
                           f"numbered 0..{v.unit_count - 1}")
        if problem is None and v.n_per_unit < 1:
            problem = "images per unit must be at least 1"
        if problem is None and v.diversity and v.n_per_unit < 2:
            problem = "diversity needs at least 2 images per unit"
        if problem is not None:
            v.status = f"error: {problem}"
        elif v.status.startswith("error:") and not v.running:
            v.status = ""
        return problem

    # -- running ---------------------------------------------------------------------------------------
    def _on_msg(self, widget, content, buffers):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "run":
            self.run()
        elif kind == "stop":
            self.stop()

    def run(self, wait: bool = False):
        """Start an optimization with the current settings in a background thread.

        Ignored while one runs. With ``wait=True``, return only when it has ended. Returns the
        :class:`~cnnvis_widgets.optvis.AMResult` when waiting, else None.
        """
        with self._lock:
            if self.running:
                return None
            problem = self._validate()
            if problem is not None:
                return None
            v = self.view
            overrides = dict(lr=float(v.lr), l2=float(v.l2), tv=float(v.tv), blur_every=int(v.blur_every))
            steps = int(v.steps)
            try:
                if steps < 0:
                    raise ValueError("steps must be >= 0")
                get_preset(v.preset, **overrides)  # report a bad combination before starting
            except (ValueError, TypeError) as err:
                v.status = f"error: {err}"
                return None
            units = list(v.units)
            n = int(v.n_per_unit)
            image_units = [u for u in units for _ in range(n)]
            is_logit = v.objective == "logit"
            layer = None if is_logit else v.layer
            self._stop = threading.Event()
            self._error = None
            self._setup_lines(image_units, is_logit)
            with v.hold_trait_notifications():
                v.image_units = image_units
                v.image_labels = self._labels(image_units, is_logit)
                v.image_layer = v.layer
                v.images = []
                v.step = 0
                v.total_steps = steps
                v.status = f"running {v.objective} of {v.layer}, units {', '.join(map(str, units))}…"
                v.running = True
            snapshots = sorted({*range(0, steps + 1, self.snapshot_every), steps})
            kwargs = dict(model=self.model, layer=layer, units=units, objective=v.objective, preset=v.preset,
                          steps=steps, n_per_unit=n, diversity=float(v.diversity), seed=int(v.seed),
                          snapshot_steps=snapshots, progress=False, on_snapshot=self._on_snapshot,
                          stop=self._stop, generator=self.generator, **overrides)
            self._thread = threading.Thread(target=self._work, kwargs=kwargs, name="cnnvis-am-explorer",
                                            daemon=True)
            self._thread.start()
        if wait:
            self.wait()
            return self._result
        return None

    def stop(self):
        """Ask the running optimization to end after its current step (it keeps its images)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the optimization ends (or ``timeout`` seconds pass); True when none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def result(self):
        """The last finished (or stopped) run's :class:`~cnnvis_widgets.optvis.AMResult`, or None."""
        return self._result

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the last run, if one did."""
        return self._error

    def _labels(self, image_units, is_logit) -> list[str]:
        classes = getattr(self.model, "classes", None)
        labels = []
        for u in image_units:
            text = f"{self.view.layer} #{u}"
            if is_logit and classes is not None and u < len(classes):
                text += f" {classes[u]}"
            labels.append(text)
        return labels

    def _setup_lines(self, image_units, is_logit):
        n = int(self.view.n_per_unit)
        lines = []
        for i, unit in enumerate(image_units):
            label = f"#{unit}" if n == 1 else f"#{unit}.{i % n}"
            lines.append(bqplot.Lines(x=np.zeros(0), y=np.zeros(0), scales={"x": self._x, "y": self._y},
                                      colors=[PALETTE[i % len(PALETTE)]], labels=[label], display_legend=True,
                                      stroke_width=1.5))
        self.chart.marks = lines
        self.chart.title = ("class logit" if is_logit else f"{self.view.objective} objective of {self.view.layer}") \
            + " per step"

    def _set_lines(self, history: np.ndarray):
        history = np.asarray(history, dtype=float)
        history = history.reshape(history.shape[0], -1 if history.size else len(self.chart.marks))
        x = np.arange(1, len(history) + 1, dtype=float)
        for i, line in enumerate(self.chart.marks):
            if i < history.shape[1]:
                with line.hold_sync():
                    line.x = x
                    line.y = history[:, i]

    @staticmethod
    def _pngs(images: np.ndarray) -> list[bytes]:
        images = np.asarray(images)
        return [png_bytes(im) for im in images.reshape(-1, *images.shape[-3:])]

    def _on_snapshot(self, step, images, history):
        pngs = self._pngs(images)
        self._set_lines(history)
        with self.view.hold_trait_notifications():
            self.view.images = pngs
            self.view.step = int(step)

    def _work(self, **kwargs):
        steps = kwargs["steps"]
        try:
            result = activation_maximization(**kwargs)
        except Exception as err:  # reported in the view; the thread must not die silently
            self._error = err
            self.view.status = f"error: {type(err).__name__}: {err}"
            self.view.running = False
            return
        self._result = result
        ran = int(result.history.shape[0])
        self._set_lines(result.history)
        status = (f"stopped at step {ran}" if ran < steps else
                  "done: objective " + ", ".join(
                      f"#{u} {v:.3g}" for u, v in zip(self.view.image_units, np.ravel(result.activations))))
        with self.view.hold_trait_notifications():
            self.view.images = self._pngs(result.images)
            self.view.step = ran
            self.view.status = status
            self.view.running = False


def _setting(name: str, writable: bool):
    def get(self):
        return getattr(self.view, name)

    def set_(self, value):
        setattr(self.view, name, value)

    return property(get, set_ if writable else None, doc=f"The view's ``{name}``.")


for _name in SETTINGS:
    setattr(AMExplorer, _name, _setting(_name, True))
for _name in STATE:
    setattr(AMExplorer, _name, _setting(_name, False))
del _name

__all__ = ["AMExplorer"]
