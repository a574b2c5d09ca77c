"""What the dissection viewer shows of a :class:`~cnnvis_widgets.dissection.DissectionResult`: one record
per unit (label, category, IoU, best concept per category), the per-category counts of its bar chart, the
units of a gallery page, and masks packed as bits for the front end.

``visible_units`` orders units as the front end does (``js/dissection_viewer/data.js``), so the kernel
sends images for exactly the tiles on screen.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..dissection.result import DissectionResult


def hex_colour(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in colour)


def pack_mask(mask: np.ndarray) -> bytes:
    """A bool mask as bits, row-major, most significant bit first (``np.packbits``); the front end unpacks
    it with the mask's shape."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1)).tobytes()


def unit_records(result: DissectionResult, layer: str) -> list[dict]:
    """One dict per unit of ``layer``: ``unit``, ``concept`` (index into ``result.concept_names``), ``label``, ``category``, ``iou``, ``detector`` and ``best``
    (per category, in ``result.categories`` order, ``[concept, iou]`` of the unit's best concept there;
    ``["", 0.0]`` for a category without concepts)."""
    labels = result.labels(layer)
    names, categories = result.concept_names, result.concept_categories
    records = []
    for unit in range(labels["concept"].shape[0]):
        concept = int(labels["concept"][unit])
        best = [[names[int(c)] if c >= 0 else "", float(i)]
                for c, i in zip(labels["category_concept"][unit], labels["category_iou"][unit])]
        records.append({"unit": unit, "concept": concept, "label": names[concept], "category": categories[concept],
                        "iou": float(labels["iou"][unit]), "detector": bool(labels["detector"][unit]),
                        "best": best})
    return records


def category_summary(result: DissectionResult, layer: str) -> dict[str, dict[str, int]]:
    """Per category: ``concepts`` (unique concepts detected, the column of ``result.summary()``),
    ``detectors`` (detector units labelled in it) and ``units`` (all units labelled in it)."""
    found = result.detectors(layer)
    labels = result.labels(layer)
    unit_categories = np.array(result.concept_categories, dtype=object)[labels["concept"]] \
        if len(result.concept_categories) else np.array([], dtype=object)
    return {category: {"concepts": len(found[category]),
                       "detectors": int(np.sum((unit_categories == category) & labels["detector"])),
                       "units": int(np.sum(unit_categories == category))}
            for category in result.categories}


def visible_units(records: Sequence[dict], category: str = "", sort_by: str = "iou", page: int = 0,
                  page_size: int = 24) -> list[int]:
    """The units on ``page`` of the gallery: those labelled in ``category`` (all when empty), by IoU (highest
    first, ties by unit number) or by unit number. The front end orders them the same way
    (``js/dissection_viewer/data.js``)."""
    shown = [r for r in records if not category or r["category"] == category]
    if sort_by == "iou":
        shown = sorted(shown, key=lambda r: (-r["iou"], r["unit"]))
    else:
        shown = sorted(shown, key=lambda r: r["unit"])
    size = max(1, int(page_size))
    pages = max(1, -(-len(shown) // size))
    page = min(max(int(page), 0), pages - 1)
    return [r["unit"] for r in shown[page * size:(page + 1) * size]]


__all__ = ["category_summary", "hex_colour", "pack_mask", "unit_records", "visible_units"]
