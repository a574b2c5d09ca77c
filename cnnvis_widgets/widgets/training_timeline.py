"""``TrainingTimeline``: chosen units' strongest inputs across training epochs, with the metric curves.

Zeiler & Fergus 2014 ("Visualizing and Understanding Convolutional Networks", §4.2, Fig. 4) show how
features evolve: for a few units of each layer, the strongest activation over the training set at
epochs 1, 2, 5, 10, 20, 30, 40 and 64, projected back to pixels. This widget shows a
:class:`~cnnvis_widgets.deconv.evolution.TrainingRecord` the same way: units as rows, recorded epochs as columns,
each cell the unit's top crop beside its DeconvNet projection (and its activation-maximization image
when recorded). A scrubber and a play button step through the epochs; a bqplot chart of the loss and
accuracy marks the chosen epoch with a vertical line.

The images travel as PNG bytes in binary buffers. Everything the grid, scrubber, player and detail panel
need is in the view's traits, so a notebook saved with its widget state still plays without a kernel (the
chart's marker then stays put: it moves on the kernel side).
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets

from ..deconv.evolution import TrainingMonitor, TrainingRecord
from ..images import png_bytes
from .bundle import bundle_source

# Mid-lightness colours that read on both a white and a near-black background.
LOSS_COLOURS = ["#e15759", "#f28e2b", "#b07aa1", "#a6784f"]
ACCURACY_COLOURS = ["#3d8bd9", "#4bb3a8", "#59a14f", "#8c8cd9"]
MARKER_COLOUR = "#8a8a8a"


def is_accuracy(name: str) -> bool:
    """Metrics drawn on the right-hand 0..1 scale: names with "acc" in them; the rest share the left one."""
    return "acc" in name.lower()


class _TimelineView(anywidget.AnyWidget):
    """The grid, scrubber and player of a :class:`TrainingTimeline` (front end: ``js/training_timeline.js``).

    ``cells`` lists one dict per (unit, recorded epoch), row by row: ``unit``, ``epoch``, ``images`` and
    ``projections`` (PNG bytes, top image first), ``values``, ``indices``, ``am`` (PNG bytes or None) and
    ``am_value``. ``metrics`` is ``{"epochs": [...], "series": {name: [value or None, ...]}}``.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    units = traitlets.List(traitlets.Int()).tag(sync=True)
    epochs = traitlets.List(traitlets.Int()).tag(sync=True)
    cells = traitlets.List(traitlets.Dict()).tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)
    epoch_index = traitlets.Int(0).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval_ms = traitlets.Int(800).tag(sync=True)
    selected_unit = traitlets.Int(-1).tag(sync=True)
    tile_size = traitlets.Int(48).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    # the chart's epoch marker, which the front end moves with the scrubber (also in an exported page); once
    # it does, it sets moves_marker and the kernel leaves the marker to it
    chart_marker = traitlets.Instance(bqplot.Lines, allow_none=True).tag(sync=True, **ipywidgets.widget_serialization)
    moves_marker = traitlets.Bool(False).tag(sync=True)


class TrainingTimeline(ipywidgets.VBox):
    """How chosen units' strongest inputs evolve over training (Zeiler & Fergus 2014, §4.2, Fig. 4).

    Displays as one output: the grid (``self.view``, an anywidget) above a bqplot chart of the metrics
    against epoch (``self.chart``): metrics whose name contains "acc" on a 0..1 scale at the right, the
    others (losses) on a scale at the left, and a dashed vertical line at the scrubber's epoch.

    In the grid, rows are units and columns the recorded epochs; each cell shows the unit's top crop over
    the probe set, its DeconvNet projection beside it (mid-grey = zero) and, when recorded, its
    activation-maximization image. The current epoch's column is highlighted. The scrubber (a range input:
    arrow keys step it) picks the epoch; Play advances one epoch every ``interval_ms`` and stops at the last
    one (Play there starts again from the first). Clicking a cell selects its unit and epoch and opens a
    detail panel: larger images, the activation value, the probe image index and the metrics at that
    epoch; it follows the scrubber.

    Args:
        source: a :class:`~cnnvis_widgets.deconv.evolution.TrainingRecord`, a record's directory, or a
            :class:`~cnnvis_widgets.deconv.evolution.TrainingMonitor` (the timeline then refreshes after every epoch
            the monitor records, so it can be shown before training starts).
        units: show only these of the record's units (default: all).
        tile_size: CSS pixels of one image in the grid.
        interval_ms: play speed, milliseconds per epoch.
        title: shown above the grid (default: model, layer).

    Attributes ``epoch_index`` (index into ``epochs``), ``epoch``, ``playing``, ``selected_unit`` read and
    write the view's state; :meth:`play`, :meth:`pause` and :meth:`refresh` act on it.
    """

    def __init__(self, source, units: Sequence[int] | None = None, tile_size: int = 48, interval_ms: int = 800,
                 title: str | None = None):
        self._monitor: TrainingMonitor | None = None
        if isinstance(source, TrainingMonitor):
            self._monitor = source
        elif isinstance(source, (str, os.PathLike)):
            source = TrainingRecord.load(source)
        elif not isinstance(source, TrainingRecord):
            raise TypeError(f"TrainingTimeline shows a TrainingRecord, a record's directory or a TrainingMonitor; "
                            f"got {type(source).__name__}. Record one with cv.TrainingMonitor(...) or "
                            "cv.TrainingRecord.from_mini_alexnet(...).")
        if tile_size < 8:
            raise ValueError(f"tile_size must be at least 8 (CSS pixels), got {tile_size}.")
        if interval_ms < 50:
            raise ValueError(f"interval_ms must be at least 50, got {interval_ms}.")
        self._record = source if isinstance(source, TrainingRecord) else None
        self._unit_filter = None if units is None else [int(u) for u in units]
        self._title = title
        self.view = _TimelineView(_esm=bundle_source("training_timeline.js"), tile_size=int(tile_size),
                                  interval_ms=int(interval_ms))
        self._build_chart()
        self.view.chart_marker = self.marker
        self.view.observe(self._on_epoch_index, names=["epoch_index", "epochs"])
        self.refresh()
        if self._monitor is not None:
            self._monitor.add_listener(self.refresh)
        super().__init__(children=[self.view, self.chart])

    # -- data ---------------------------------------------------------------------------------------------
    @property
    def record(self) -> TrainingRecord | None:
        """The record shown (None while a monitor has written nothing yet)."""
        return self._record

    def _read(self) -> TrainingRecord | None:
        if self._monitor is None:
            return self._record
        if not self._monitor.recorded_epochs and not (self._monitor.directory / "record.json").exists():
            return None
        return self._monitor.result

    def refresh(self) -> None:
        """Re-read the record (from the monitor, when following one) and redraw. The scrubber stays on its
        epoch, or, when it was on the last one, moves to the new last epoch."""
        record = self._read()
        self._record = record
        view = self.view
        if record is None:
            view.status = "No epochs recorded yet."
            self._set_lines({}, [])
            return
        rows = self._rows(record)
        epochs = list(record.epochs)
        old_epochs, old_index = list(view.epochs), view.epoch_index
        at_end = not old_epochs or old_index >= len(old_epochs) - 1
        if epochs and old_epochs and not at_end and old_epochs[old_index] in epochs:
            index = epochs.index(old_epochs[old_index])
        else:
            index = max(len(epochs) - 1, 0) if old_epochs else 0
        title = self._title if self._title is not None else " · ".join(
            part for part in (record.model_name, f"layer {record.layer}") if part)
        series = {name: [None if not math.isfinite(v) else float(v) for v in values]
                  for name, values in record.metrics.items()}
        with view.hold_sync():
            view.title = title
            view.layer = record.layer
            view.units = [record.units[r] for r in rows]
            view.epochs = epochs
            view.cells = [self._cell(record, r, epoch) for r in rows for epoch in epochs]
            view.metrics = {"epochs": list(record.metric_epochs), "series": series}
            view.epoch_index = index
            view.status = "" if epochs else "No epochs recorded yet."
            if view.selected_unit not in view.units:
                view.selected_unit = -1
        self._set_lines(record.metrics, record.metric_epochs)
        self._on_epoch_index()

    def _rows(self, record: TrainingRecord) -> list[int]:
        if self._unit_filter is None:
            return list(range(len(record.units)))
        missing = [u for u in self._unit_filter if u not in record.units]
        if missing:
            raise ValueError(f"unit {missing[0]} is not in the record; it follows units {record.units}.")
        return [record.units.index(u) for u in self._unit_filter]

    @staticmethod
    def _cell(record: TrainingRecord, row: int, epoch: int) -> dict:
        projections = record.projections(epoch)
        am, am_values = record.am(epoch), record.am_values(epoch)
        return {
            "unit": record.units[row], "epoch": int(epoch),
            "images": [png_bytes(crop) for crop in record.images(epoch)[row]],
            "projections": [] if projections is None else [png_bytes(p) for p in projections[row]],
            "values": [float(v) for v in record.values(epoch)[row]],
            "indices": [int(i) for i in record.indices(epoch)[row]],
            "am": None if am is None else png_bytes(am[row]),
            "am_value": None if am_values is None else float(am_values[row]),
        }

    # -- chart --------------------------------------------------------------------------------------------
    def _build_chart(self) -> None:
        self._x = bqplot.LinearScale()
        self._loss = bqplot.LinearScale()
        self._accuracy = bqplot.LinearScale(min=0.0, max=1.0)
        self.marker = bqplot.Lines(x=[0.0, 0.0], y=[0.0, 1.0], scales={"x": self._x, "y": self._accuracy},
                                   colors=[MARKER_COLOUR], line_style="dashed", stroke_width=1.5,
                                   labels=["epoch"], display_legend=False)
        self._axes = {
            "x": bqplot.Axis(scale=self._x, label="epoch", grid_lines="none", tick_format="d"),
            "loss": bqplot.Axis(scale=self._loss, label="loss", side="left", grid_lines="dashed",
                                label_offset="44px"),
            "accuracy": bqplot.Axis(scale=self._accuracy, label="accuracy", side="right", grid_lines="none",
                                    tick_format=".0%", label_offset="50px"),
        }
        self.chart = bqplot.Figure(
            marks=[self.marker], axes=list(self._axes.values()), title="metrics per epoch",
            legend_location="top", animation_duration=0,
            fig_margin={"top": 36, "bottom": 44, "left": 64, "right": 72},
            layout=ipywidgets.Layout(width="100%", max_width="720px", height="260px"))

    def _set_lines(self, metrics: dict[str, list[float]], epochs: list[int]) -> None:
        lines = []
        losses = accuracies = 0
        x_all = np.asarray(epochs, dtype=float)
        for name, values in metrics.items():
            y = np.asarray(values, dtype=float)
            keep = np.isfinite(y)
            if not keep.any():
                continue
            if is_accuracy(name):
                scale, colour = self._accuracy, ACCURACY_COLOURS[accuracies % len(ACCURACY_COLOURS)]
                accuracies += 1
            else:
                scale, colour = self._loss, LOSS_COLOURS[losses % len(LOSS_COLOURS)]
                losses += 1
            lines.append(bqplot.Lines(x=x_all[keep], y=y[keep], scales={"x": self._x, "y": scale}, colors=[colour],
                                      labels=[name], display_legend=True, stroke_width=2, marker="circle",
                                      marker_size=16))
        axes = [self._axes["x"]]
        if losses or not accuracies:
            axes.append(self._axes["loss"])
        if accuracies:
            axes.append(self._axes["accuracy"])
        span = (float(min(epochs)), float(max(epochs))) if epochs else (0.0, 1.0)
        recorded = self.view.epochs
        if recorded:
            span = (min(span[0], recorded[0]), max(span[1], recorded[-1]))
        self._x.min, self._x.max = span[0], max(span[1], span[0] + 1)
        self.chart.axes = axes
        self.chart.marks = [*lines, self.marker]

    def _on_epoch_index(self, change=None) -> None:
        epochs = self.view.epochs
        if not epochs:
            return
        index = self.view.epoch_index
        if not 0 <= index < len(epochs):
            self.view.epoch_index = min(max(index, 0), len(epochs) - 1)
            return
        if self.view.moves_marker:  # the front end has moved it already
            return
        epoch = float(epochs[index])
        self.marker.x = [epoch, epoch]

    # -- state --------------------------------------------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """The recorded epochs, the grid's columns."""
        return list(self.view.epochs)

    @property
    def epoch_index(self) -> int:
        """The scrubber's position: an index into :attr:`epochs`."""
        return self.view.epoch_index

    @epoch_index.setter
    def epoch_index(self, value: int) -> None:
        self.view.epoch_index = int(value)

    @property
    def epoch(self) -> int | None:
        """The epoch the scrubber is on (None when nothing is recorded)."""
        epochs = self.view.epochs
        return epochs[self.view.epoch_index] if epochs else None

    @epoch.setter
    def epoch(self, value: int) -> None:
        if value not in self.view.epochs:
            raise ValueError(f"Epoch {value} was not recorded; recorded epochs: {self.view.epochs}.")
        self.view.epoch_index = self.view.epochs.index(value)

    @property
    def playing(self) -> bool:
        """Whether the view is stepping through the epochs."""
        return self.view.playing

    @playing.setter
    def playing(self, value: bool) -> None:
        self.view.playing = bool(value)

    @property
    def selected_unit(self) -> int:
        """The unit whose detail panel is open (-1: none)."""
        return self.view.selected_unit

    @selected_unit.setter
    def selected_unit(self, value: int) -> None:
        value = int(value)
        if value != -1 and value not in self.view.units:
            raise ValueError(f"unit {value} is not shown; the timeline's units are {self.view.units}.")
        self.view.selected_unit = value

    @property
    def detail(self) -> dict | None:
        """What the detail panel shows: the selected unit's cell at the current epoch, with that epoch's
        metrics (None when no unit is selected)."""
        unit, epoch = self.view.selected_unit, self.epoch
        if unit == -1 or epoch is None:
            return None
        cell = next(c for c in self.view.cells if c["unit"] == unit and c["epoch"] == epoch)
        metrics = self.view.metrics
        at = metrics["epochs"].index(epoch) if epoch in metrics.get("epochs", []) else None
        values = {} if at is None else {name: series[at] for name, series in metrics["series"].items()}
        return {**cell, "metrics": values}

    def close(self) -> None:
        """Close the view and the chart and stop following the monitor."""
        monitor = getattr(self, "_monitor", None)
        if monitor is not None:
            monitor.remove_listener(self.refresh)
        chart = getattr(self, "chart", None)
        parts = [getattr(self, "view", None), *(chart.marks + chart.axes + [chart] if chart is not None else [])]
        for widget in parts:
            if widget is not None:
                widget.close()
        super().close()

    def play(self) -> None:
        """Start stepping through the epochs (in the view; from the last epoch it starts at the first)."""
        self.view.playing = True

    def pause(self) -> None:
        """Stop stepping."""
        self.view.playing = False


__all__ = ["TrainingTimeline"]
