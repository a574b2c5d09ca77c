"""``DissectionViewer``: the results of a Network Dissection, layer by layer, unit by unit.

Bau, Zhou, Khosla, Oliva and Torralba, "Network Dissection: Quantifying Interpretability of Deep Visual
Representations", CVPR 2017. Each unit is labelled with the concept whose ground-truth masks best agree
(IoU) with the unit's thresholded activation maps; a unit whose IoU reaches the threshold is a detector.
The paper summarizes a layer by the number of unique concepts detected in each category (its Fig. 4 and 5)
and shows a unit by its top images with the unit's active region (its Fig. 1 and 3).

The viewer shows one panel per (result, layer): a bqplot bar chart of the unique concepts detected per
category (click a bar to show only the units labelled in that category; the front end does this, so it also
works in an exported page), a gallery of unit tiles (each the unit's top image with its mask, its label,
category and IoU; sorted by IoU or unit number, paged) and, for a clicked unit, its top images on canvases
where the front end draws the unit's mask (magenta) and the concept's ground truth (cyan) with a chosen
opacity. ``compare=`` adds a second panel beside the first.

Labels and IoU of every unit go to the front end at once. Images do not: the front end asks for the
units of the page it shows (``requested_units``) and for the unit it opens (``selected_unit``), and the
kernel answers with that many PNG images and packed-bit masks (``tile_images``, ``detail``), prepared by
:mod:`.dissection_records`.
"""

from __future__ import annotations

from typing import Sequence

import anywidget
import bqplot
import ipywidgets
import numpy as np
import traitlets

from ..dissection.overlay import CONCEPT_COLOUR, UNIT_COLOUR
from ..dissection.result import DissectionResult
from ..images import png_bytes
from .bundle import bundle_source
from .dissection_records import category_summary, hex_colour, pack_mask, unit_records, visible_units

SORT_ORDERS = ("iou", "unit")
MASK_MODES = ("unit", "concept", "both")
# The most units one request may ask images for, whatever page_size says.
MAX_PAGE_SIZE = 96
DEFAULT_OPACITY = 0.45  # as overlay.overlay draws the engine's HTML report
# Mid-lightness colours that read on a white and on a near-black background, one per category.
CATEGORY_COLOURS = ("#3d8bd9", "#f28e2b", "#59a14f", "#e15759", "#9c6ade", "#76b7b2", "#edc948", "#ff9da7")
SELECTED_OPACITY, OTHER_OPACITY = 1.0, 0.3


def _count_ticks(top: int, most: int = 7) -> np.ndarray:
    """Whole-number ticks from 0 to at least ``top``, at most ``most`` of them, a step of 1, 2 or 5 times a
    power of ten."""
    step = 1
    while top / step > most - 1:
        step = next(s * 10 ** k for k in range(12) for s in (1, 2, 5) if s * 10 ** k > step)
    return np.arange(0, -(-top // step) * step + 1, step, dtype=float)


class _DissectionGalleryView(anywidget.AnyWidget):
    """The category filter, unit gallery and unit detail of one :class:`DissectionPanel` (front end:
    ``js/dissection_viewer.js``).

    The kernel sets ``layer``, ``categories``, ``summary`` (per category: ``concepts``, ``detectors``,
    ``units``) and ``units`` (see :func:`unit_records`). The front end sets ``category``, ``sort_by``,
    ``page``, ``requested_units`` (the units of the page it shows) and ``selected_unit``; the kernel answers
    ``requested_units`` with ``tile_images`` (``layer``, ``units``, ``images``: top image PNG per unit,
    ``masks``: its packed unit mask, ``mask_shape``) and ``selected_unit`` with ``detail`` (``layer``,
    ``unit``, ``concept``, ``image_indices``, ``images``, ``unit_masks``, ``concept_masks``, ``mask_shape``).

    ``chart_bars`` is the panel's bar chart: the front end follows its clicks (bqplot's "select" interaction)
    and sets ``category`` itself, with or without a kernel (an exported page), and then sets
    ``handles_bar_clicks`` so the kernel leaves the clicks to it.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    layer = traitlets.Unicode("").tag(sync=True)
    categories = traitlets.List(traitlets.Unicode()).tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)
    units = traitlets.List(traitlets.Dict()).tag(sync=True)
    iou_threshold = traitlets.Float(0.04).tag(sync=True)
    category = traitlets.Unicode("").tag(sync=True)
    sort_by = traitlets.Enum(SORT_ORDERS, default_value="iou").tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(24).tag(sync=True)
    requested_units = traitlets.List(traitlets.Int()).tag(sync=True)
    tile_images = traitlets.Dict().tag(sync=True)
    selected_unit = traitlets.Int(-1).tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)
    mask = traitlets.Enum(MASK_MODES, default_value="both").tag(sync=True)
    opacity = traitlets.Float(DEFAULT_OPACITY).tag(sync=True)
    unit_colour = traitlets.Unicode(hex_colour(UNIT_COLOUR)).tag(sync=True)
    concept_colour = traitlets.Unicode(hex_colour(CONCEPT_COLOUR)).tag(sync=True)
    tile_size = traitlets.Int(96).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    chart_bars = traitlets.Instance(bqplot.Bars, allow_none=True).tag(sync=True, **ipywidgets.widget_serialization)
    handles_bar_clicks = traitlets.Bool(False).tag(sync=True)


class DissectionPanel(ipywidgets.VBox):
    """One layer of one :class:`~cnnvis_widgets.dissection.DissectionResult`: a layer picker (when the
    result has several layers), the bar chart of unique concepts detected per category (``chart``,
    ``bars``) and the gallery with its unit detail (``view``). Made by :class:`DissectionViewer`."""

    def __init__(self, result: DissectionResult, layer: str, title: str, page_size: int, sort_by: str,
                 tile_size: int):
        self.result = result
        self._records: dict[str, list[dict]] = {}
        self._loading = False
        self.view = _DissectionGalleryView(
            _esm=bundle_source("dissection_viewer.js"), title=title, categories=list(result.categories),
            iou_threshold=result.iou_threshold, page_size=page_size, sort_by=sort_by, tile_size=tile_size)
        self.picker = ipywidgets.Dropdown(options=list(result.layers), value=layer, description="layer",
                                          layout=ipywidgets.Layout(width="220px"))
        self.picker.layout.display = None if len(result.layers) > 1 else "none"
        self._build_chart()
        self.view.chart_bars = self.bars
        self.show_layer(layer)
        self.picker.observe(lambda change: self.show_layer(change["new"]), names="value")
        self.view.observe(self._on_category, names="category")
        self.view.observe(self._on_query, names=["category", "sort_by", "page", "page_size"])
        self.view.observe(self._on_requested, names="requested_units")
        self.view.observe(self._on_selected, names="selected_unit")
        self.bars.on_element_click(self._on_bar_click)
        super().__init__(children=[self.picker, self.chart, self.view],
                         layout=ipywidgets.Layout(flex="1 1 0", min_width="320px"))

    # -- data ----------------------------------------------------------------------------------------------
    @property
    def layer(self) -> str:
        """The layer shown."""
        return self.view.layer

    @layer.setter
    def layer(self, value: str) -> None:
        self.show_layer(value)

    def records(self, layer: str | None = None) -> list[dict]:
        """The unit metadata of ``layer`` (default: the one shown) as the front end gets it."""
        layer = self.layer if layer is None else layer
        if layer not in self._records:
            self._records[layer] = unit_records(self.result, layer)
        return self._records[layer]

    def show_layer(self, layer: str) -> None:
        """Show ``layer`` of this panel's result (clears the category filter and the open unit)."""
        if layer not in self.result.layers:
            raise ValueError(f"Layer {layer!r} was not dissected in this {self.result.model_name} result; it has "
                             f"{', '.join(self.result.layers)}. Pick one of those, or run dissect() with it.")
        records = self.records(layer)
        summary = category_summary(self.result, layer)
        view = self.view
        self._loading = True
        try:
            with view.hold_sync():
                view.layer = layer
                view.units = records
                view.summary = summary
                view.category = ""
                view.page = 0
                view.selected_unit = -1
                view.detail = {}
                view.tile_images = {}
                view.requested_units = visible_units(records, "", view.sort_by, 0, view.page_size)
        finally:
            self._loading = False
        if self.picker.value != layer:
            self.picker.value = layer
        self._update_chart(summary)
        self._on_requested()

    # -- chart ---------------------------------------------------------------------------------------------
    def _build_chart(self) -> None:
        categories = list(self.result.categories)
        self._x = bqplot.OrdinalScale(domain=categories)
        self._y = bqplot.LinearScale(min=0.0)
        self.bars = bqplot.Bars(
            x=categories, y=np.zeros(len(categories)), scales={"x": self._x, "y": self._y},
            colors=[CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)] for i in range(len(categories))],
            opacities=[SELECTED_OPACITY] * len(categories), padding=0.25,
            interactions={"click": "select", "hover": "tooltip"},  # the front end follows `selected`
            tooltip=bqplot.Tooltip(fields=["x", "y"], labels=["category", "unique concepts"]))
        self._y_axis = bqplot.Axis(scale=self._y, side="left", label="unique concepts",
                                   grid_lines="dashed", tick_format="d", label_offset="36px")
        axes = [bqplot.Axis(scale=self._x, label="category (click a bar to filter the units)", grid_lines="none"),
                self._y_axis]
        self.chart = bqplot.Figure(
            marks=[self.bars], axes=axes, animation_duration=0,
            fig_margin={"top": 36, "bottom": 48, "left": 56, "right": 12},
            layout=ipywidgets.Layout(width="100%", max_width="640px", height="260px"))

    def _update_chart(self, summary: dict) -> None:
        counts = np.array([summary[c]["concepts"] for c in self.result.categories], dtype=float)
        detected = int(counts.sum())
        detectors = sum(s["detectors"] for s in summary.values())
        ticks = _count_ticks(int(counts.max(initial=0.0)) + 1)  # whole numbers of concepts
        with self.bars.hold_sync():
            self.bars.y = counts
            self._y.max = float(ticks[-1])
            self._y_axis.tick_values = ticks
        self.chart.title = f"{self.layer}: {detected} unique concepts · {detectors}/{len(self.records())} detectors"
        self._highlight()

    def _highlight(self) -> None:
        chosen = self.view.category
        self.bars.opacities = [SELECTED_OPACITY if not chosen or c == chosen else OTHER_OPACITY
                               for c in self.result.categories]

    def _on_bar_click(self, mark, event: dict) -> None:
        if self.view.handles_bar_clicks:  # the front end has set the category already
            return
        data = event.get("data") or {}
        category = data.get("x")
        if category not in self.result.categories:
            index = data.get("index")
            if not isinstance(index, int) or not 0 <= index < len(self.result.categories):
                return
            category = self.result.categories[index]
        self.category = "" if self.view.category == category else category

    # -- filter, gallery, detail ---------------------------------------------------------------------------
    @property
    def category(self) -> str:
        """The category whose units the gallery shows; ``""`` for all units."""
        return self.view.category

    @category.setter
    def category(self, value: str | None) -> None:
        value = value or ""
        if value and value not in self.result.categories:
            raise ValueError(f"There is no category {value!r}; this result's categories are "
                             f"{', '.join(self.result.categories)} (or '' for all units).")
        view = self.view
        with view.hold_sync():  # the filter and its first page reach the front end in one message
            view.category = value
            view.page = 0

    def _on_category(self, change=None) -> None:
        self._highlight()

    def _on_query(self, change) -> None:
        """A new filter, order or page: back to the first page for a new filter or order, then the units of
        the page (the front end asks for the same ones; the kernel answers once)."""
        view = self.view
        if self._loading:
            return
        if change["name"] in ("category", "sort_by") and view.page != 0:
            view.page = 0
            return
        view.requested_units = self.visible_units

    @property
    def visible_units(self) -> list[int]:
        """The units of the gallery page shown, in tile order."""
        view = self.view
        return visible_units(self.records(), view.category, view.sort_by, view.page, view.page_size)

    def _dataset_error(self, err: Exception) -> None:
        self.view.status = str(err)

    def _on_requested(self, change=None) -> None:
        view = self.view
        if self._loading:
            return
        layer = view.layer
        records = self.records(layer)
        units = [int(u) for u in view.requested_units if 0 <= int(u) < len(records)][:MAX_PAGE_SIZE]
        images, masks, shape = [], [], list(self.result.seg_size)
        try:
            for unit in units:
                picture, unit_masks, _ = self._unit_images(layer, unit, k=1)
                images.append(png_bytes(picture[0]) if len(picture) else b"")
                masks.append(pack_mask(unit_masks[0]) if len(unit_masks) else b"")
        except RuntimeError as err:
            self._dataset_error(err)
            return
        view.status = ""
        view.tile_images = {"layer": layer, "units": units, "images": images, "masks": masks, "mask_shape": shape}

    def _unit_images(self, layer: str, unit: int, k: int | None = None):
        concept = self.concept_index(unit, layer)
        return self.result.unit_images(layer, unit, concept=concept, k=k)

    def concept_index(self, unit: int, layer: str | None = None) -> int:
        """The index in ``result.concept_names`` of ``unit``'s label."""
        return int(self.records(layer)[unit]["concept"])

    def _on_selected(self, change=None) -> None:
        view = self.view
        unit, layer = view.selected_unit, view.layer
        if not 0 <= unit < len(self.records(layer)):
            view.detail = {}
            return
        try:
            images, unit_masks, concept_masks = self._unit_images(layer, unit)
        except RuntimeError as err:
            self._dataset_error(err)
            view.detail = {"layer": layer, "unit": unit, "images": [], "unit_masks": [], "concept_masks": [],
                           "mask_shape": list(self.result.seg_size), "image_indices": [],
                           "concept": self.records(layer)[unit]["label"]}
            return
        indices = self.result.layers[layer].top_indices[unit]
        view.detail = {
            "layer": layer, "unit": unit, "concept": self.records(layer)[unit]["label"],
            "image_indices": [int(i) for i in indices[indices >= 0][:len(images)]],
            "images": [png_bytes(image) for image in images],
            "unit_masks": [pack_mask(mask) for mask in unit_masks],
            "concept_masks": [pack_mask(mask) for mask in concept_masks],
            "mask_shape": list(self.result.seg_size),
        }

    def select(self, unit: int | None) -> None:
        """Open ``unit``'s detail (None closes it)."""
        if unit is None:
            self.view.selected_unit = -1
            return
        count = len(self.records())
        if not 0 <= int(unit) < count:
            raise ValueError(f"unit {unit} is out of range; {self.layer} has {count} units, numbered 0..{count - 1}.")
        self.view.selected_unit = int(unit)

    def close(self) -> None:
        """Close the panel's widgets."""
        for widget in [self.view, self.picker, *self.chart.marks, *self.chart.axes, self.chart]:
            widget.close()
        super().close()


class DissectionViewer(ipywidgets.VBox):
    """Network Dissection results (Bau et al. 2017): the layer summary, unit gallery and unit detail.

    Each panel shows one layer of a :class:`~cnnvis_widgets.dissection.DissectionResult`:

    * a layer picker when the result has several layers;
    * a bqplot bar chart of the unique concepts detected per category (the paper's summary; the chart's
      title gives the detector units). Clicking a bar shows only the units whose label is in that category;
      clicking it again, or "all" above the gallery, shows every unit again. The chosen bar stays opaque,
      the others fade;
    * the unit gallery: per unit its top image with its thresholded mask, unit number, label, category and
      IoU (units below the IoU threshold, not detectors, are faded), sorted by IoU or by unit number, paged;
    * a clicked unit's detail: its top images on canvases with the unit's mask (magenta) and its label's
      ground-truth mask (cyan), a mask choice (unit, concept, both) and an opacity slider, its IoU, label,
      category and best label in every category.

    Args:
        result: the result of :func:`~cnnvis_widgets.dissection.dissect`. Its images are read from
            ``result.dataset`` as the gallery pages and unit details need them.
        layer: the layer shown first (default: the result's last).
        compare: a second panel beside the first: another layer of ``result`` (``"conv1"``), the same
            layer of another result (``other_result``, e.g. another model), or a layer of another result
            (``(other_result, "conv3")``).
        page_size: units per gallery page (at most 96).
        sort_by: ``"iou"`` (highest first) or ``"unit"``.
        link_categories: in compare mode, choosing a category in one panel chooses it in the other too
            (where that result has the category).
        title: a panel's heading (default: the model's name), or one per panel in compare mode.
        tile_size: CSS pixels of a tile's image.

    ``panels`` holds the :class:`DissectionPanel` objects; ``layer``, ``category``, ``sort_by``, ``page``,
    :meth:`select` and ``visible_units`` act on the first panel.
    """

    def __init__(self, result: DissectionResult, layer: str | None = None, compare=None, page_size: int = 24,
                 sort_by: str = "iou", link_categories: bool = True, title: str | Sequence[str] | None = None,
                 tile_size: int = 96):
        if not isinstance(result, DissectionResult):
            raise TypeError(f"DissectionViewer shows a DissectionResult, got {type(result).__name__}; pass the "
                            "result of cnnvis_widgets.dissection.dissect(model, dataset, layers).")
        if not result.layers:
            raise ValueError("This DissectionResult holds no layers; dissect at least one, e.g. layers=['conv5'].")
        if sort_by not in SORT_ORDERS:
            raise ValueError(f"sort_by must be one of {', '.join(SORT_ORDERS)}; got {sort_by!r}.")
        if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE} units; got {page_size}.")
        if int(tile_size) < 16:
            raise ValueError(f"tile_size is a tile's width in CSS pixels, at least 16; got {tile_size}.")
        layer = list(result.layers)[-1] if layer is None else layer
        if layer not in result.layers:
            raise ValueError(f"Layer {layer!r} was not dissected; this result has {', '.join(result.layers)}. "
                             "Pass one of those as layer=, or run dissect() with it.")
        sources = [(result, layer)]
        if compare is not None:
            sources.append(self._compared(result, layer, compare))
        titles = self._titles(title, sources)
        self.panels = [DissectionPanel(r, name, t, int(page_size), sort_by, int(tile_size))
                       for (r, name), t in zip(sources, titles)]
        self.link_categories = bool(link_categories)
        if len(self.panels) > 1:
            for panel in self.panels:
                panel.view.observe(self._on_panel_category, names="category")
        row = ipywidgets.HBox(children=self.panels,
                              layout=ipywidgets.Layout(width="100%", align_items="flex-start", flex_flow="row wrap"))
        super().__init__(children=[row])

    @staticmethod
    def _compared(result: DissectionResult, layer: str, compare) -> tuple[DissectionResult, str]:
        usage = ("Pass compare= as another layer name of this result (compare='conv1'), another DissectionResult "
                 "with the same layer (compare=other_result), or (other_result, 'conv3').")
        if isinstance(compare, str):
            other, name = result, compare
        elif isinstance(compare, DissectionResult):
            other, name = compare, layer
        elif isinstance(compare, tuple) and len(compare) == 2 and isinstance(compare[0], DissectionResult) \
                and isinstance(compare[1], str):
            other, name = compare
        else:
            raise TypeError(f"compare= got {type(compare).__name__}. {usage}")
        if not other.layers:
            raise ValueError(f"The compared result holds no layers. {usage}")
        if name not in other.layers:
            where = "This result" if other is result else f"The compared result ({other.model_name})"
            raise ValueError(f"{where} has no layer {name!r}; it has {', '.join(other.layers)}. {usage}")
        return other, name

    @staticmethod
    def _titles(title, sources) -> list[str]:
        if title is None:
            return [r.model_name for r, _ in sources]
        if isinstance(title, str):
            return [title] + [r.model_name for r, _ in sources[1:]]
        titles = [str(t) for t in title]
        if len(titles) != len(sources):
            raise ValueError(f"title= gives {len(titles)} titles for {len(sources)} panels; give one string per "
                             "panel, or one string for the first.")
        return titles

    def _on_panel_category(self, change) -> None:
        if not self.link_categories:
            return
        value = change["new"]
        for panel in self.panels:
            if panel.view is not change["owner"] and panel.view.category != value and \
                    (not value or value in panel.result.categories):
                panel.category = value

    # -- the first panel -----------------------------------------------------------------------------------
    @property
    def panel(self) -> DissectionPanel:
        """The first (left) panel."""
        return self.panels[0]

    @property
    def result(self) -> DissectionResult:
        """The first panel's result."""
        return self.panel.result

    @property
    def layer(self) -> str:
        """The layer the first panel shows."""
        return self.panel.layer

    @layer.setter
    def layer(self, value: str) -> None:
        self.panel.show_layer(value)

    @property
    def category(self) -> str:
        """The category filter of the first panel (``""``: all units); linked panels follow it."""
        return self.panel.category

    @category.setter
    def category(self, value: str | None) -> None:
        self.panel.category = value

    @property
    def sort_by(self) -> str:
        """``"iou"`` or ``"unit"``: the order of every panel's gallery."""
        return self.panel.view.sort_by

    @sort_by.setter
    def sort_by(self, value: str) -> None:
        if value not in SORT_ORDERS:
            raise ValueError(f"sort_by must be one of {', '.join(SORT_ORDERS)}; got {value!r}.")
        for panel in self.panels:
            panel.view.sort_by = value

    @property
    def page(self) -> int:
        """The gallery page of the first panel (0-based)."""
        return self.panel.view.page

    @page.setter
    def page(self, value: int) -> None:
        self.panel.view.page = int(value)

    @property
    def visible_units(self) -> list[int]:
        """The units on the first panel's gallery page, in tile order."""
        return self.panel.visible_units

    def select(self, unit: int | None) -> None:
        """Open ``unit``'s detail in the first panel (None closes it)."""
        self.panel.select(unit)

    def close(self) -> None:
        """Close the viewer and its panels."""
        for panel in getattr(self, "panels", []):
            panel.close()
        super().close()


__all__ = ["DissectionPanel", "DissectionViewer"]
