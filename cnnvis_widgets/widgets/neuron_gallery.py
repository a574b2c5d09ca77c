"""``NeuronGallery``: a layer's units as a paged grid of tiles, each with the unit's top images.

The widget renders only; the kernel side here turns results into PNG bytes one page at a time (sent as
binary buffers) and, when it was given a model and images, computes a layer's top activations the first
time it is shown, with a progress bar. A layer picked in the view is computed in a background thread, so
the kernel keeps running other cells, and the view's Cancel button stops it after the current batch; with
the result cache on (:mod:`cnnvis_widgets.cache`), what it had scanned is kept and picking the layer again
resumes from there. Layers set from Python (``gallery.layer = "conv2"``, the first layer at construction)
are computed in the calling cell, as any Python call.
"""

from __future__ import annotations

import threading
from typing import Mapping, Sequence

import anywidget
import numpy as np
import traitlets
from torch import nn

from ..deconv.diagnostics import FilterDiagnostics
from ..deconv.top_images import TopActivations, top_activations
from ..images import ImageSource, framed_picture, png_bytes
from ..model import Model
from ..optvis import AMResult
from .bundle import bundle_source


class NeuronGallery(anywidget.AnyWidget):
    """A grid of a layer's units with their top-activating image crops (and first-layer filters).

    Args:
        source: a :class:`TopActivations` or :class:`~cnnvis_widgets.optvis.AMResult`; a dict or list of
            them (one per layer, with a layer picker); a :class:`FilterDiagnostics` (both of its layers,
            with the flags on their tiles); or a :class:`Model`, together with ``dataset``, to compute layers
            on demand.
        am: activation-maximization results (one, or a list or dict of them) shown in each unit's tile
            beside its top images.
        dataset: the images behind the results; lets the detail view show each top image whole, as it was
            given, with the unit's receptive field outlined and, where the model saw only part of it (a
            ``fit="crop"`` model), the rest dimmed and the seen region outlined. Required when ``source`` is a
            model.
        layers: with a model, the layers offered in the picker (default: every conv layer, ``nn.Conv2d`` or a
            subclass, and spatial max-pool, plus ``layer``).
        layer: the layer shown first.
        k: with a model, images per unit.
        projections: with a model, also compute each top image's DeconvNet projection with this rule
            (``"deconvnet"``, ``"guided"`` or ``"gradient"``) and show it beside the crop.
        page_size: units per page.
        tile_size: CSS pixels of one crop in the grid.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    unit_count = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(24).tag(sync=True)
    tiles = traitlets.List(traitlets.Dict()).tag(sync=True)
    tile_size = traitlets.Int(40).tag(sync=True)
    selected_unit = traitlets.Int(-1).tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Float(-1.0).tag(sync=True)
    computing = traitlets.Bool(False).tag(sync=True)  # a layer is being computed in the background (Cancel shows)

    def __init__(self, source, dataset=None, layers: Sequence[str] | None = None, layer: str | None = None,
                 k: int = 9, page_size: int = 24, tile_size: int = 40, title: str | None = None, am=None,
                 projections: str | None = None, **kwargs):
        self._results: dict[str, TopActivations] = {}
        self._am: dict[str, AMResult] = {}
        self._model: Model | None = None
        self._dataset = dataset
        self._k = k
        self._projections = projections
        self._worker: threading.Thread | None = None
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._shown_layer: str | None = None
        if isinstance(source, FilterDiagnostics):
            source = {source.layer: source.top_first, source.second_layer: source.top_second}
        if isinstance(source, Model):
            if dataset is None:
                raise ValueError("NeuronGallery(model) needs images: pass dataset=, e.g. cv.datasets.shapeworld().")
            self._model = source
        else:
            for result in _as_results(source, "source"):
                (self._results if isinstance(result, TopActivations) else self._am)[_layer_of(result)] = result
        for result in _as_results(am, "am") if am is not None else []:
            if not isinstance(result, AMResult):
                raise TypeError(f"am= takes AMResult objects, got {type(result).__name__}.")
            self._am[_layer_of(result)] = result
        if self._model is not None:
            choices = list(layers) if layers else _default_layers(self._model, layer)
            for name in choices:
                self._model.layer(name)  # fail early on a wrong name, with the list
        else:
            choices = list(dict.fromkeys([*self._results, *self._am]))
        if not choices:
            raise ValueError("Nothing to show: no layers given.")
        first = layer or (choices[-1] if self._model is not None else choices[0])
        if first not in choices:
            raise ValueError(f"layer={first!r} is not among the gallery's layers {choices}.")
        model_name = self._model.name if self._model else next(
            (r.model_name for r in self._results.values()), "activation maximization")
        super().__init__(_esm=bundle_source("neuron_gallery.js"), layers=choices, page_size=page_size,
                         tile_size=tile_size, title=title if title is not None else model_name, **kwargs)
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_page, names=["page", "page_size"])
        self.observe(self._on_select, names="selected_unit")
        self.on_msg(self._on_message)
        self.layer = first

    # -- data for the view --------------------------------------------------------------------------------
    @property
    def result(self) -> TopActivations | None:
        """The result shown now."""
        return self._results.get(self.layer)

    def _compute(self, layer: str, cancel: threading.Event | None = None) -> TopActivations:
        self.status = f"computing top activations of {layer}…"
        self.progress = 0.0

        def report(fraction: float) -> None:
            self.progress = round(fraction, 3)
            if cancel is not None and cancel.is_set():
                raise ComputationCancelled(layer, fraction)

        try:
            result = top_activations(self._model, self._dataset, layer, k=self._k, projections=self._projections,
                                     progress=report)
        except ComputationCancelled:
            raise
        except Exception as err:
            self.status = f"Could not compute {layer}: {err}"
            raise
        finally:
            self.progress = -1.0
        self.status = ""
        return result

    def wait(self, timeout: float | None = None) -> "NeuronGallery":
        """Wait for a layer computing in the background; re-raises its error, if it failed."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                raise TimeoutError(f"The gallery is still computing {self.layer!r} after {timeout} s.")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self

    def cancel(self) -> None:
        """Stop a layer computing in the background after its current batch (the view's Cancel button)."""
        self._cancel.set()

    def _on_message(self, widget, content, buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel":
            self.cancel()

    def _in_background(self, layer: str) -> None:
        """Compute ``layer`` in a thread; show it when done, unless another layer was picked meanwhile."""
        self.cancel()
        if self._worker is not None:
            self._worker.join()  # the previous computation ends after its current batch
        self._cancel = cancel = threading.Event()
        self._error = None
        self.computing = True

        def work() -> None:
            try:
                self._results[layer] = self._compute(layer, cancel)
            except ComputationCancelled as stop:
                kept = " (what was scanned is kept: pick it again to resume)" if _caching() else ""
                self.status = f"Cancelled {layer} at {stop.fraction:.0%}{kept}."
                if self.layer == layer and self._shown_layer is not None:
                    self.layer = self._shown_layer  # back to what the grid shows
                return
            except BaseException as err:  # shown in the status line; wait() re-raises it
                self._error = err
                if self.layer == layer and self._shown_layer is not None:
                    self.layer = self._shown_layer
                return
            finally:
                self.computing = False
            if self.layer == layer:
                self._show_layer()

        self._worker = threading.Thread(target=work, name=f"cnnvis-gallery-{layer}", daemon=True)
        self._worker.start()

    def _units(self) -> list[int]:
        """The units of the current layer, in tile order."""
        if self.result is not None:
            return list(range(self.result.units))
        return [int(u) for u in self._am[self.layer].units]

    def _on_layer(self, change=None) -> None:
        if self.layer not in self._results and self.layer not in self._am:
            if "layer" in self._property_lock:  # picked in the view: never block the kernel
                self._in_background(self.layer)
                return
            self._results[self.layer] = self._compute(self.layer)
        self._show_layer()

    def _show_layer(self) -> None:
        self._shown_layer = self.layer
        self.selected_unit = -1
        self.detail = {}
        with self.hold_sync():
            self.unit_count = len(self._units())
            if self.page != 0:
                self.page = 0  # triggers _on_page
            else:
                self._on_page()

    def _on_page(self, change=None) -> None:
        units = self._units()
        pages = max(1, -(-len(units) // max(1, self.page_size)))
        if not 0 <= self.page < pages:
            self.page = min(max(self.page, 0), pages - 1)
            return
        start = self.page * self.page_size
        self.tiles = [self._tile(u) for u in units[start:start + self.page_size]]

    def _tile(self, unit: int) -> dict:
        result, am = self.result, self._am.get(self.layer)
        tile = {"unit": unit, "label": self._label(unit), "values": [], "image_indices": [], "images": [],
                "projections": [], "filter": None, "flags": [], "am": [], "am_values": []}
        if result is not None:
            tile.update(
                values=[float(v) for v in result.values[unit]],
                image_indices=[int(i) for i in result.indices[unit]],
                images=[png_bytes(crop) for crop in result.crops[unit]],
                projections=[] if result.projections is None else [png_bytes(p) for p in result.projections[unit]],
                filter=png_bytes(result.filters[unit]) if result.filters is not None else None,
                flags=list(result.meta.get("flags", {}).get(str(unit), [])),
            )
        if am is not None and unit in am.units:
            row = int(np.flatnonzero(am.units == unit)[0])
            images = am.images[row] if am.images.ndim == 5 else am.images[row:row + 1]
            tile.update(am=[png_bytes(im) for im in images],
                        am_values=[float(v) for v in np.atleast_1d(am.activations[row])])
        return tile

    def _label(self, unit: int) -> str:
        result, am = self.result, self._am.get(self.layer)
        if result is None:  # AM only: class names where the units are classes
            if am is None or not am.labels or unit not in am.units:
                return ""
            return am.labels[int(np.flatnonzero(am.units == unit)[0])]
        if result.receptive_field is not None:
            return ""
        classes = self._model.classes if self._model else result.meta.get("classes")
        return str(classes[unit]) if classes and result.units == len(classes) else ""

    def _on_select(self, change) -> None:
        unit = change["new"]
        result = self.result
        if unit < 0 or self._dataset is None or result is None or unit >= result.units:
            self.detail = {}
            return
        source = ImageSource(self._dataset, result.image_size, channels=result.crops.shape[2], fit=result.fit)
        indices = [int(i) for i in result.indices[unit]]
        context = [png_bytes(_in_original(source, i, box)) for i, box in zip(indices, result.boxes[unit])]
        legend = "Magenta: the unit's receptive field, in the image as given."
        if any(not source.seen_box(i).whole for i in indices):
            legend += f" Blue: the part the model saw (fit={result.fit.fit!r}); the rest is dimmed."
        self.detail = {"unit": unit, "context": context, "legend": legend}


class ComputationCancelled(Exception):
    """A layer's computation was stopped by the view's Cancel button (or :meth:`NeuronGallery.cancel`)."""

    def __init__(self, layer: str, fraction: float):
        super().__init__(f"computing {layer} was cancelled at {fraction:.0%}")
        self.layer, self.fraction = layer, fraction


def _caching() -> bool:
    from ..cache import default_cache

    return default_cache() is not None


RECEPTIVE_FIELD_COLOUR = (255, 0, 255)
SEEN_COLOUR = (0, 200, 255)
CONTEXT_SIDE = 192  # the longer side of a detail picture, in pixels: small images are upscaled, photos reduced


def _in_original(source: ImageSource, index: int, box) -> np.ndarray:
    """Image ``index`` as given, with the receptive field ``box`` (in seen-image pixels) mapped onto it and, where
    the model saw only part of the image, that part outlined and the rest dimmed."""
    seen = source.seen_box(index)
    boxes = [(seen.to_original(box), RECEPTIVE_FIELD_COLOUR)]
    if seen.whole:
        return framed_picture(source.original(index), boxes, side=CONTEXT_SIDE)
    return framed_picture(source.original(index), [(seen.box, SEEN_COLOUR)] + boxes, side=CONTEXT_SIDE,
                          dim_outside=seen.box)


def _default_layers(model: Model, layer: str | None) -> list[str]:
    """The picker's layers when none are given: every conv layer (``nn.Conv2d`` and its subclasses) and spatial
    max-pool, and ``layer``, the one asked to show first, wherever it lies."""
    names = {l.name for l in model.layers_of(nn.Conv2d, nn.MaxPool2d) if l.spatial}
    if layer is not None:
        model.layer(layer)  # a wrong name fails here, with the list
        names.add(layer)
    return [name for name in model.layers.names if name in names]


def _as_results(value, what: str) -> list:
    """One result, or a list / dict of them, as a list."""
    kinds = (TopActivations, AMResult)
    if isinstance(value, kinds):
        return [value]
    items = list(value.values()) if isinstance(value, Mapping) else list(value) if isinstance(value, Sequence) else None
    if not items or not all(isinstance(r, kinds) for r in items):
        raise TypeError(f"NeuronGallery {what} takes a TopActivations or AMResult, a dict/list of them, or (as "
                        f"source) a Model with dataset=; got {type(value).__name__}.")
    return items


def _layer_of(result) -> str:
    return result.layer if result.layer is not None else "output"
