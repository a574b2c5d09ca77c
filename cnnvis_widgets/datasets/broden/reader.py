"""The Broden reader: a Broden folder as a :class:`torch.utils.data.Dataset`.

:class:`Broden` parses and checks the CSV tables once, when built, and reads
images and mask PNGs (label code ``R + 256 * G`` per pixel) on demand.
Problems with the files raise :class:`~.errors.BrodenFormatError`, which
names the file and the 1-based line (the header is line 1).
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .csv_tables import _float, _int, _parse_label_categories, _read_csv
from .errors import _error
from .schema import CATEGORY_COLUMNS, INDEX_COLUMNS, MAX_LABEL, Category, Label, Segmentation, _Row

__all__ = ["Broden"]

_INT_ENTRY = re.compile(r"[+-]?\d+")
# Single-channel PNG modes whose pixel value is the label code itself.
_DIRECT_MODES = ("L", "I", "I;16", "I;16B", "I;16L")


class Broden(Dataset):
    """A Broden folder read as a dataset of images (Bau et al. 2017).

    Parameters
    ----------
    root:
        The folder holding ``index.csv``, ``category.csv``, ``label.csv`` and
        ``images/``.
    split:
        Keep only the rows whose ``split`` column equals it (``"train"``,
        ``"val"``); ``None`` keeps all rows.
    image_size:
        ``None`` returns images at their stored size; an int ``s`` or a pair
        ``(h, w)`` resizes them (bilinear, antialiased) to ``s x s`` or
        ``h x w``.

    The CSV files are parsed and checked once, here: required columns,
    integers, label numbers referenced by index cells, and the existence of
    the first selected row's files. Other files are checked when read (see
    :meth:`verify` to check them all at once). ``dataset[i]`` is the RGB
    image as a float32 tensor ``[3, H, W]`` in ``[0, 1]``; masks come from
    :meth:`segmentation` and :meth:`label_masks`.
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None,
                 image_size: int | tuple[int, int] | None = None):
        self.root = Path(root)
        self.split = split
        self.image_size = _size_pair(image_size)
        self.images_dir = self.root / "images"
        self.category_info = self._read_categories()
        self._read_labels()
        all_rows = self._read_index()
        #: split names present in index.csv, sorted
        self.splits = sorted({row.split for row in all_rows})
        if split is None:
            self._rows = all_rows
        else:
            self._rows = [row for row in all_rows if row.split == split]
            if not self._rows and all_rows:
                present = ", ".join(repr(s) for s in self.splits)
                raise ValueError(f"{self.root / 'index.csv'} has no rows with split {split!r}; "
                                 f"splits present: {present}")
        if self._rows:
            row = self._rows[0]
            self._existing(row, "image", row.image)
            for category, entries in row.pngs.items():
                for entry in entries:
                    self._existing(row, category, entry)

    # -- parsing -------------------------------------------------------------

    def _read_categories(self) -> dict[str, Category]:
        path = self.root / "category.csv"
        _, rows = _read_csv(path, ("name",))
        info: dict[str, Category] = {}
        for line, row in rows:
            name = row["name"].strip()
            if not name:
                raise _error(path, line, "column 'name' is empty", "name the category")
            if name in info:
                raise _error(path, line, f"category {name!r} is listed twice", "keep one row per category")
            values = [_int(path, line, c, row.get(c, ""), default=0) for c in CATEGORY_COLUMNS[1:]]
            info[name] = Category(name, *values)
        return info

    def _read_labels(self) -> None:
        path = self.root / "label.csv"
        _, rows = _read_csv(path, ("number", "name", "category"))
        labels: dict[int, Label] = {}
        lines: dict[int, int] = {}
        for line, row in rows:
            number = _int(path, line, "number", row["number"], minimum=0)
            if number in lines:
                raise _error(path, line, f"label number {number} already appears on line {lines[number]}",
                             "give every label its own number")
            lines[number] = line
            if number == 0:
                continue  # some files carry a "-" row for "unlabelled"
            if number > MAX_LABEL:
                raise _error(path, line, f"label number {number} exceeds {MAX_LABEL}",
                             "mask PNGs hold codes up to R + 256 * G = 65535")
            name = row["name"].strip()
            if not name:
                raise _error(path, line, f"label {number} has an empty name", "name the label")
            categories = _parse_label_categories(path, line, row["category"])
            if not categories:
                raise _error(path, line, f"label {number} ({name!r}) has no category",
                             "write its category like object(3)")
            primary = max(categories, key=categories.__getitem__)  # first wins a tie
            labels[number] = Label(
                number=number,
                name=name,
                category=primary,
                categories=categories,
                frequency=_int(path, line, "frequency", row.get("frequency", ""), default=0),
                coverage=_float(path, line, "coverage", row.get("coverage", ""), default=0.0),
                syns=tuple(s.strip() for s in row.get("syns", "").split(";") if s.strip()),
            )
        #: the labels (concepts), ascending by number; label 0 is not one
        self.labels: list[Label] = [labels[n] for n in sorted(labels)]
        self._label_by_number = labels
        top = max(labels, default=0)
        #: label names indexed by number; "-" for 0 and for unused numbers
        self.label_names: list[str] = ["-"] * (top + 1)
        # known[code] is True for 0 and every label number, to check masks
        self._known = np.zeros(top + 1, dtype=bool)
        self._known[0] = True
        for number, label in labels.items():
            self.label_names[number] = label.name
            self._known[number] = True

    def _read_index(self) -> list[_Row]:
        path = self.root / "index.csv"
        header, rows = _read_csv(path, INDEX_COLUMNS)
        #: category columns of index.csv, in header order
        self.categories: list[str] = [c for c in header if c not in INDEX_COLUMNS]
        for category in self.categories:
            if category not in self.category_info:
                raise _error(path, 1, f"column {category!r} is not a category listed in category.csv",
                             "add the category to category.csv or drop the column")
        out = []
        for line, row in rows:
            image = row["image"].strip()
            if not image:
                raise _error(path, line, "column 'image' is empty", "give the image path relative to images/")
            split = row["split"].strip()
            if not split:
                raise _error(path, line, "column 'split' is empty", "write a split such as train or val")
            ih, iw, sh, sw = (_int(path, line, c, row[c], minimum=1) for c in ("ih", "iw", "sh", "sw"))
            pngs: dict[str, tuple[str, ...]] = {}
            numbers: dict[str, tuple[int, ...]] = {}
            for category in self.categories:
                files, ints = [], []
                for entry in row[category].split(";"):
                    entry = entry.strip()
                    if not entry:
                        continue
                    if _INT_ENTRY.fullmatch(entry):
                        number = int(entry)
                        if number <= 0 or number not in self._label_by_number:
                            raise _error(path, line,
                                         f"column {category!r} entry {entry!r} is not a label number in label.csv",
                                         "add the label to label.csv or fix the entry")
                        ints.append(number)
                    else:
                        files.append(entry)
                pngs[category] = tuple(files)
                numbers[category] = tuple(ints)
            out.append(_Row(line, image, split, ih, iw, sh, sw, pngs, numbers))
        return out

    # -- metadata ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return (f"Broden(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, "
                f"categories={self.categories}, labels={len(self.labels)})")

    def cache_fingerprint(self) -> str:
        """What a result computed on these images depends on: the CSV files, the split, the image size and each
        selected image file's size and modification time (for :mod:`cnnvis_widgets.cache`)."""
        h = hashlib.sha256(f"{self.split} {self.image_size}".encode())
        for name in ("index.csv", "label.csv", "category.csv"):
            h.update((self.root / name).read_bytes())
        for row in self._rows:
            stat = (self.images_dir / row.image).stat()
            h.update(f"{row.image} {stat.st_size} {stat.st_mtime_ns}".encode())
        return h.hexdigest()[:20]

    def label(self, number: int) -> Label:
        """The :class:`Label` with this number (KeyError if there is none)."""
        try:
            return self._label_by_number[number]
        except KeyError:
            raise KeyError(f"no label number {number} in {self.root / 'label.csv'}") from None

    def labels_in(self, category: str) -> list[int]:
        """Numbers of the labels whose primary category is ``category``, ascending."""
        if category not in self.category_info and category not in self.categories:
            raise KeyError(f"unknown category {category!r}; categories: {', '.join(self.category_info)}")
        return [label.number for label in self.labels if label.category == category]

    def label_number(self, name: str, category: str | None = None) -> int:
        """The number of the label called ``name``.

        ``category`` restricts the search to labels with that primary
        category; it is needed when the name is used in several categories.
        """
        found = [label for label in self.labels
                 if label.name == name and (category is None or label.category == category)]
        if not found:
            where = f" in category {category!r}" if category is not None else ""
            raise KeyError(f"no label named {name!r}{where} in {self.root / 'label.csv'}")
        if len(found) > 1:
            options = ", ".join(f"{label.number} ({label.category})" for label in found)
            raise KeyError(f"label name {name!r} is used by several labels: {options}; pass category=")
        return found[0].number

    def _row(self, i: int) -> _Row:
        i = operator.index(i)
        n = len(self._rows)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range for {n} images")
        return self._rows[i]

    def image_path(self, i: int) -> Path:
        """Path of image ``i``'s file."""
        return self.images_dir / self._row(i).image

    def image_size_of(self, i: int) -> tuple[int, int]:
        """``(ih, iw)``: the stored size of image ``i`` as recorded in index.csv."""
        row = self._row(i)
        return row.ih, row.iw

    def seg_size(self, i: int) -> tuple[int, int]:
        """``(sh, sw)``: the size of image ``i``'s segmentation masks."""
        row = self._row(i)
        return row.sh, row.sw

    def split_of(self, i: int) -> str:
        """The ``split`` column of image ``i``."""
        return self._row(i).split

    # -- file access ---------------------------------------------------------

    def _existing(self, row: _Row, column: str, entry: str) -> Path:
        path = self.images_dir / entry
        if not path.is_file():
            raise _error(self.root / "index.csv", row.line,
                         f"column {column!r} entry {entry!r} does not exist under {self.images_dir}",
                         "re-generate the dataset or fix the path")
        return path

    def _open(self, row: _Row, column: str, entry: str) -> Image.Image:
        path = self._existing(row, column, entry)
        try:
            image = Image.open(path)
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise _error(self.root / "index.csv", row.line,
                         f"column {column!r} entry {entry!r} could not be decoded ({exc})",
                         "re-generate the file") from exc
        return image

    def _read_rgb(self, row: _Row) -> np.ndarray:
        with self._open(row, "image", row.image) as image:
            array = np.array(image.convert("RGB"), dtype=np.uint8)
        if array.shape[:2] != (row.ih, row.iw):
            raise _error(self.root / "index.csv", row.line,
                         f"image {row.image!r} is {array.shape[0]}x{array.shape[1]} "
                         f"but ih,iw say {row.ih}x{row.iw}",
                         "fix ih and iw or re-generate the dataset")
        return array

    def _read_mask(self, row: _Row, category: str, entry: str) -> np.ndarray:
        with self._open(row, category, entry) as image:
            if image.mode in _DIRECT_MODES:
                codes = np.asarray(image).astype(np.int64)
            else:
                rgb = np.asarray(image.convert("RGB"))
                codes = rgb[..., 0].astype(np.int64) + 256 * rgb[..., 1].astype(np.int64)
        index = self.root / "index.csv"
        if codes.shape != (row.sh, row.sw):
            raise _error(index, row.line,
                         f"column {category!r} mask {entry!r} is {codes.shape[0]}x{codes.shape[1]} "
                         f"but sh,sw say {row.sh}x{row.sw}",
                         "fix sh and sw or re-generate the dataset")
        known = self._known
        bad = codes >= len(known)
        bad[~bad] = ~known[codes[~bad]]
        if bad.any():
            shown = ", ".join(str(c) for c in np.unique(codes[bad])[:5])
            raise _error(index, row.line,
                         f"column {category!r} mask {entry!r} holds label code(s) {shown} "
                         "that are not in label.csv",
                         "add the labels to label.csv or re-generate the mask")
        return codes

    # -- data ----------------------------------------------------------------

    def __getitem__(self, i: int) -> torch.Tensor:
        """Image ``i`` as float32 RGB ``[3, H, W]`` in [0, 1], resized to ``image_size`` if set."""
        row = self._row(i)
        x = torch.from_numpy(self._read_rgb(row)).permute(2, 0, 1).float().div_(255)
        if self.image_size is not None and self.image_size != (row.ih, row.iw):
            x = F.interpolate(x[None], size=self.image_size, mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp_(0.0, 1.0)
        return x.contiguous()

    def segmentation(self, i: int) -> dict[str, Segmentation]:
        """Every category's labels for image ``i``, at the mask size ``(sh, sw)``.

        Returns ``{category: Segmentation}`` for all categories, in
        index.csv order; a category without labels has ``masks`` of shape
        ``[0, sh, sw]`` and no ``image_labels``.
        """
        row = self._row(i)
        return {category: self._segmentation(row, category) for category in self.categories}

    def _segmentation(self, row: _Row, category: str) -> Segmentation:
        layers = [self._read_mask(row, category, entry) for entry in row.pngs[category]]
        masks = np.stack(layers) if layers else np.zeros((0, row.sh, row.sw), dtype=np.int64)
        return Segmentation(masks=masks, image_labels=list(row.numbers[category]))

    def label_masks(self, i: int, category: str | None = None) -> dict[int, np.ndarray]:
        """Per-label boolean masks of image ``i``.

        Returns ``{label number: bool array [sh, sw]}`` for every label
        present in ``category`` (all categories when ``None``), ascending by
        number. A pixel belongs to a label if any mask layer carries it
        there; an image-level label covers every pixel.
        """
        row = self._row(i)
        if category is None:
            categories = self.categories
        elif category in self.categories:
            categories = [category]
        else:
            raise KeyError(f"unknown category {category!r}; index.csv has {', '.join(self.categories)}")
        out: dict[int, np.ndarray] = {}
        for name in categories:
            seg = self._segmentation(row, name)
            for layer in seg.masks:
                for code in np.unique(layer):
                    if code == 0:
                        continue
                    mask = layer == code
                    key = int(code)
                    out[key] = out[key] | mask if key in out else mask
            for number in seg.image_labels:
                out[number] = np.ones((row.sh, row.sw), dtype=bool)
        return dict(sorted(out.items()))

    def verify(self, deep: bool = False) -> None:
        """Check every selected row's files exist; ``deep`` also decodes them.

        Raises :class:`BrodenFormatError` for the first problem found.
        """
        for row in self._rows:
            if deep:
                self._read_rgb(row)
                for category in self.categories:
                    self._segmentation(row, category)
            else:
                self._existing(row, "image", row.image)
                for category, entries in row.pngs.items():
                    for entry in entries:
                        self._existing(row, category, entry)

    def loader(self, batch_size: int, num_workers: int = 0, *,
               indices: Sequence[int] | None = None, pin_memory: bool = False) -> DataLoader:
        """Stream images in order as ``(indices LongTensor[B], images FloatTensor[B, 3, H, W])``.

        ``indices`` restricts the stream to those images (default: all).
        Batching needs one image size: set ``image_size`` or use a dataset
        whose images all have the same ``ih, iw``.
        """
        if indices is None:
            chosen = list(range(len(self)))
        else:
            chosen = []
            for i in indices:
                self._row(i)  # raises IndexError when out of range
                chosen.append(operator.index(i) % len(self))
        if self.image_size is None:
            sizes = sorted({(self._rows[i].ih, self._rows[i].iw) for i in chosen})
            if len(sizes) > 1:
                shown = ", ".join(f"{h}x{w}" for h, w in sizes[:3])
                raise ValueError(f"images in {self.root} have {len(sizes)} different sizes ({shown}, ...) "
                                 "and cannot be batched; pass image_size= to Broden(...)")
        return DataLoader(_IndexedImages(self, chosen), batch_size=batch_size, shuffle=False,
                          num_workers=num_workers, pin_memory=pin_memory)


class _IndexedImages(Dataset):
    """``(index, image)`` pairs of a :class:`Broden` for :meth:`Broden.loader`."""

    def __init__(self, broden: Broden, indices: list[int]):
        self.broden = broden
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[int, torch.Tensor]:
        i = self.indices[k]
        return i, self.broden[i]


def _size_pair(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        pair = (size, size)
    else:
        pair = tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"image_size must be a positive int or (height, width), got {size!r}")
    return pair
