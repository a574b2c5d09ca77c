"""``InversionView``: images reconstructed from each layer's features, and the reconstruction error per layer.

Mahendran & Vedaldi 2015 ("Understanding Deep Image Representations by Inverting Them", CVPR; IJCV 2016,
"Visualizing Deep Convolutional Neural Networks Using Natural Pre-images") show, for one image, its
pre-image from every layer in turn: how much of the image each layer still keeps. Dosovitskiy & Brox 2016
("Inverting Visual Representations with Convolutional Networks", CVPR) do the same with a trained
up-convolutional decoder (UpconvNet), and from binarized or half-dropped features (§5.2) to ask which part
of a representation carries the information.

The view gets every (method, perturbation) combination's images at once, as PNG bytes in binary buffers,
so its toggles swap strips without the kernel (a saved notebook or exported HTML keeps working); the kernel
follows the toggles to highlight the matching line in a bqplot chart of the pixel error per layer.
"""

from __future__ import annotations

from typing import Sequence

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets

from ..images import png_bytes
from ..inversion.perturbations import PERTURBATIONS
from ..inversion.result import InversionResult
from .bundle import bundle_source

METHODS = ("regularized", "upconv")
METHOD_NAMES = {"regularized": "regularized", "upconv": "UpconvNet"}
NO_PERTURBATION = "none"
CHOICES = (NO_PERTURBATION, *PERTURBATIONS)

# Mid-lightness colours that read on both a white and a near-black background: one per method; the
# perturbation sets the dash pattern.
METHOD_COLOURS = {"regularized": "#3d8bd9", "upconv": "#f28e2b"}
LINE_STYLES = {NO_PERTURBATION: "solid", "binarize": "dashed", "dropout": "dotted"}
SHOWN_WIDTH, OTHER_WIDTH = 4.0, 1.5
SHOWN_OPACITY, OTHER_OPACITY = 1.0, 0.4
# With more images than this, the view shows one strip and a picker of the originals.
MAX_STRIPS = 4
# `show(perturbation=...)` left out: keep the current perturbation where the method has it.
_KEEP = object()


def _choice(perturbation: str | None) -> str:
    return NO_PERTURBATION if perturbation is None else perturbation


def combination_label(method: str, perturbation: str | None) -> str:
    """``"regularized"``, ``"UpconvNet · binarize"``: the legend's name for a result."""
    name = METHOD_NAMES.get(method, method)
    choice = _choice(perturbation)
    return name if choice == NO_PERTURBATION else f"{name} · {choice}"


class _InversionStripView(anywidget.AnyWidget):
    """The strips and toggles of an :class:`InversionView` (front end: ``js/inversion_view.js``).

    ``originals`` holds one PNG per image. ``combinations`` holds one dict per result: ``method``,
    ``perturbation`` (``"none"``, ``"binarize"`` or ``"dropout"``), ``images`` (PNG bytes, image-major:
    image ``i``'s reconstruction from layer ``j`` is at ``i * len(layers) + j``), ``pixel_errors`` and
    ``feature_errors`` (``[image][layer]``).
    """

    _esm = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    originals = traitlets.List().tag(sync=True)
    combinations = traitlets.List(traitlets.Dict()).tag(sync=True)
    method = traitlets.Unicode("regularized").tag(sync=True)
    perturbation = traitlets.Unicode(NO_PERTURBATION).tag(sync=True)
    selected_image = traitlets.Int(0).tag(sync=True)
    max_strips = traitlets.Int(MAX_STRIPS).tag(sync=True)
    image_width = traitlets.Int(64).tag(sync=True)
    image_height = traitlets.Int(64).tag(sync=True)
    scale = traitlets.Int(3).tag(sync=True)
    # the error chart's lines, one per [method, perturbation] of chart_keys, which the front end styles as the
    # toggles change (also in an exported page); once it does, it sets styles_chart and the kernel leaves them
    chart_lines = traitlets.List(traitlets.Instance(bqplot.Lines)).tag(sync=True, **ipywidgets.widget_serialization)
    chart_keys = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    styles_chart = traitlets.Bool(False).tag(sync=True)


class InversionView(ipywidgets.VBox):
    """Reconstructions of images from each layer, by method and feature perturbation, with their errors.

    Network inversion after Mahendran & Vedaldi 2015/2016 (``method="regularized"``: the regularized
    pre-image, alpha-norm + total variation) and Dosovitskiy & Brox 2016 (``method="upconv"``: an
    UpconvNet decoder per layer), optionally from binarized or 50%-dropout features that keep their L2 norm
    (Dosovitskiy & Brox 2016, §5.2).

    Displays as one output: ``self.view`` (an anywidget) shows a strip per image, the original and then
    its reconstruction from each layer, labelled with the layer and that image's pixel error
    ``||x - x0||^2 / ||x0 - mean(x0)||^2``, under a method toggle (regularized | UpconvNet) and a
    perturbation toggle (none | binarize | dropout) whose buttons are enabled only for the combinations
    given. With more than four images it shows one strip at a time and a picker of the originals.
    ``self.chart`` (bqplot) plots the mean pixel error against layer, one line per combination (colour:
    method; dashes: perturbation), the one shown drawn thick and the others faded.

    Args:
        results: one :class:`~cnnvis_widgets.inversion.InversionResult`, or several of the same images and
            layers that differ in ``method`` and/or ``perturbation`` (one each).
        title: shown above the strips (default: the model's name).
        scale: on-screen magnification of the images (at most; a strip wider than the output shrinks its images
            to fit, and no image is magnified past 256 CSS pixels).

    ``method`` and ``perturbation`` (None for unperturbed features) read and set the combination shown;
    :meth:`show` sets both at once. :attr:`result` is that combination's result, :attr:`shown_images` its
    PNG bytes as the view gets them, :attr:`results` all of them.
    """

    def __init__(self, results: InversionResult | Sequence[InversionResult], title: str | None = None,
                 scale: int = 3):
        self._results = self._check(results)
        if int(scale) < 1:
            raise ValueError(f"scale must be a positive whole number (a magnification), got {scale}.")
        first = self._results[0]
        height, width = first.original.shape[-2:]
        title = first.model_name if title is None else title
        self.view = _InversionStripView(
            _esm=bundle_source("inversion_view.js"), title=title or "", layers=first.layers,
            originals=[png_bytes(image) for image in first.original],
            combinations=[self._combination(r) for r in self._results], method=first.method,
            perturbation=_choice(first.perturbation), image_width=int(width), image_height=int(height),
            scale=int(scale))
        self._build_chart()
        self.view.observe(self._on_choice, names=["method", "perturbation"])
        self.view.observe(self._on_selected_image, names="selected_image")
        super().__init__(children=[self.view, self.chart])

    # -- input --------------------------------------------------------------------------------------------
    @staticmethod
    def _check(results) -> list[InversionResult]:
        usage = ("Pass the result of cv.invert(model, images, layers=[...]), or a list of such results for the "
                 "same images and layers with different method= and perturbation=.")
        if isinstance(results, InversionResult):
            results = [results]
        elif isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
            raise TypeError(f"InversionView shows InversionResult objects, got {type(results).__name__}. {usage}")
        results = list(results)
        if not results:
            raise ValueError(f"InversionView got no results. {usage}")
        for i, result in enumerate(results):
            if not isinstance(result, InversionResult):
                raise TypeError(f"Item {i} is a {type(result).__name__}, not an InversionResult. {usage}")
            if result.method not in METHODS:
                raise ValueError(f"Result {i} has method {result.method!r}; InversionView knows {list(METHODS)}.")
            if _choice(result.perturbation) not in CHOICES:
                raise ValueError(f"Result {i} has perturbation {result.perturbation!r}; InversionView knows None, "
                                 f"{', '.join(repr(p) for p in PERTURBATIONS)}.")
            if not result.layers:
                raise ValueError(f"Result {i} holds no layers; invert at least one, e.g. layers=['conv1'].")
            if len(result.original) == 0:
                raise ValueError(f"Result {i} holds no images; invert at least one image.")
        first = results[0]
        seen = {}
        for i, result in enumerate(results):
            key = (result.method, _choice(result.perturbation))
            name = combination_label(result.method, result.perturbation)
            if key in seen:
                raise ValueError(f"Results {seen[key]} and {i} are both {name}; pass one result per method and "
                                 "perturbation.")
            seen[key] = i
            if result.layers != first.layers:
                raise ValueError(f"Result {i} ({name}) inverts layers {result.layers}, but result 0 inverts "
                                 f"{first.layers}; invert the same layers=[...] for every method and perturbation.")
            if result.original.shape != first.original.shape or not np.allclose(result.original, first.original,
                                                                                atol=1 / 255):
                raise ValueError(f"Result {i} ({name}) reconstructs different original images than result 0 "
                                 f"(shapes {tuple(result.original.shape)} and {tuple(first.original.shape)}); "
                                 "invert the same images with every method and perturbation.")
        return results

    @staticmethod
    def _combination(result: InversionResult) -> dict:
        layers = result.layers
        count = len(result.original)
        return {
            "method": result.method,
            "perturbation": _choice(result.perturbation),
            "images": [png_bytes(result.images[layer][i]) for i in range(count) for layer in layers],
            "pixel_errors": [[float(result.pixel_errors[layer][i]) for layer in layers] for i in range(count)],
            "feature_errors": [[float(result.feature_errors[layer][i]) for layer in layers] for i in range(count)],
        }

    # -- chart --------------------------------------------------------------------------------------------
    def _build_chart(self) -> None:
        layers = self._results[0].layers
        positions = np.arange(len(layers), dtype=float)
        self._x = bqplot.LinearScale(min=-0.25, max=max(len(layers) - 1, 1) + 0.25)
        # headroom above the highest line for the legend, which bqplot draws inside the plot
        means = np.array([e["pixel"] for r in self._results for e in r.errors.values()])
        highest = float(means[np.isfinite(means)].max(initial=0.0)) or 1.0
        self._y = bqplot.LinearScale(min=0.0, max=highest * (1.2 + 0.12 * len(self._results)))
        self.lines: dict[tuple[str, str], bqplot.Lines] = {}
        for result in self._results:
            errors = result.errors
            key = (result.method, _choice(result.perturbation))
            self.lines[key] = bqplot.Lines(
                x=positions, y=np.array([errors[layer]["pixel"] for layer in layers]),
                scales={"x": self._x, "y": self._y}, colors=[METHOD_COLOURS[result.method]],
                line_style=LINE_STYLES[key[1]], labels=[combination_label(*key)], display_legend=True,
                marker="circle", marker_size=28)
        axes = [bqplot.Axis(scale=self._x, label="layer", grid_lines="none", tick_values=positions,
                            tick_labels={str(i): name for i, name in enumerate(layers)}),
                bqplot.Axis(scale=self._y, label="pixel error", side="left", grid_lines="dashed",
                            tick_format=".2f", label_offset="44px")]
        self.chart = bqplot.Figure(
            marks=list(self.lines.values()), axes=axes, title="reconstruction error per layer (mean over images)",
            legend_location="top-left", animation_duration=0,
            fig_margin={"top": 36, "bottom": 44, "left": 64, "right": 16},
            layout=ipywidgets.Layout(width="100%", max_width="720px", height="300px"))
        self._highlight()
        self.view.chart_keys = [list(key) for key in self.lines]
        self.view.chart_lines = list(self.lines.values())

    def _highlight(self) -> None:
        if self.view.styles_chart:  # the front end styles the lines already
            return
        shown = (self.view.method, self.view.perturbation)
        for key, line in self.lines.items():
            with line.hold_sync():
                line.stroke_width = SHOWN_WIDTH if key == shown else OTHER_WIDTH
                line.opacities = [SHOWN_OPACITY if key == shown else OTHER_OPACITY]

    # -- the combination shown ----------------------------------------------------------------------------
    def _available(self, method: str) -> list[str]:
        return [c for c in CHOICES if (method, c) in self.lines]

    def _on_choice(self, change=None) -> None:
        view = self.view
        if (view.method, view.perturbation) not in self.lines:
            # a method without the current perturbation: its unperturbed result, else its first one
            method = view.method if self._available(view.method) else self._results[0].method
            available = self._available(method)
            with view.hold_trait_notifications():
                view.method = method
                view.perturbation = view.perturbation if view.perturbation in available else available[0]
            return
        self._highlight()

    def _on_selected_image(self, change) -> None:
        count = len(self.view.originals)
        if not 0 <= self.view.selected_image < count:
            self.view.selected_image = min(max(self.view.selected_image, 0), count - 1)

    @property
    def method(self) -> str:
        """The inversion method shown: ``"regularized"`` or ``"upconv"``."""
        return self.view.method

    @method.setter
    def method(self, value: str) -> None:
        self.show(method=value)

    @property
    def perturbation(self) -> str | None:
        """The feature perturbation shown: None, ``"binarize"`` or ``"dropout"``."""
        value = self.view.perturbation
        return None if value == NO_PERTURBATION else value

    @perturbation.setter
    def perturbation(self, value: str | None) -> None:
        self.show(perturbation=value)

    @property
    def combinations(self) -> list[tuple[str, str | None]]:
        """The (method, perturbation) pairs there are results for."""
        return [(r.method, r.perturbation) for r in self._results]

    def show(self, method: str | None = None, perturbation=_KEEP) -> None:
        """Show the result of ``method`` (default: the current one) with ``perturbation`` (default: the current
        one when that method has it, else none)."""
        method = self.view.method if method is None else method
        if not self._available(method):
            present = sorted({r.method for r in self._results})
            raise ValueError(f"There is no {method!r} result; this view has {present}.")
        available = self._available(method)
        if perturbation is _KEEP:
            choice = self.view.perturbation if self.view.perturbation in available else available[0]
        else:
            choice = _choice(perturbation)
        if choice not in available:
            names = [None if c == NO_PERTURBATION else c for c in available]
            raise ValueError(f"There is no {combination_label(method, perturbation)} result; the "
                             f"{METHOD_NAMES[method]} results have perturbation {names}.")
        with self.view.hold_trait_notifications():
            self.view.method = method
            self.view.perturbation = choice

    @property
    def result(self) -> InversionResult:
        """The result shown."""
        key = (self.view.method, self.view.perturbation)
        return next(r for r in self._results if (r.method, _choice(r.perturbation)) == key)

    @property
    def results(self) -> list[InversionResult]:
        """Every result the view holds, in the order given."""
        return list(self._results)

    @property
    def shown_images(self) -> dict:
        """The PNG bytes the view shows now: ``{"originals": [image], "reconstructions": [image][layer]}``."""
        key = {"method": self.view.method, "perturbation": self.view.perturbation}
        combination = next(c for c in self.view.combinations
                           if {"method": c["method"], "perturbation": c["perturbation"]} == key)
        count = len(self.view.layers)
        images = combination["images"]
        return {"originals": list(self.view.originals),
                "reconstructions": [images[i:i + count] for i in range(0, len(images), count)]}

    @property
    def selected_image(self) -> int:
        """The image whose strip is shown when there are more than four (they are all shown otherwise)."""
        return self.view.selected_image

    @selected_image.setter
    def selected_image(self, value: int) -> None:
        count = len(self.view.originals)
        if not 0 <= int(value) < count:
            raise ValueError(f"image {value} is out of range; the view holds {count} images, numbered 0..{count - 1}.")
        self.view.selected_image = int(value)

    def close(self) -> None:
        """Close the view and the chart."""
        chart = getattr(self, "chart", None)
        parts = [getattr(self, "view", None), *(chart.marks + chart.axes + [chart] if chart is not None else [])]
        for widget in parts:
            if widget is not None:
                widget.close()
        super().close()


__all__ = ["InversionView"]
