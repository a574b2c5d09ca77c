"""The Broden dataset format: reader and writer.

Broden ("broadly and densely labeled dataset") is the concept dataset of
Network Dissection (Bau, Zhou, Khosla, Oliva and Torralba, "Network
Dissection: Quantifying Interpretability of Deep Visual Representations",
CVPR 2017). It merges several densely labelled image datasets into one
layout, which NetDissect and NetDissect-Lite (``loader/data_loader.py``)
read. The layout is::

    root/
        index.csv          one row per image
        category.csv       one row per category
        label.csv          one row per label (concept)
        c_<category>.csv   the labels of one category, with in-category codes
        images/            images and segmentation PNGs

``index.csv`` has the columns ``image,split,ih,iw,sh,sw`` followed by one
column per category (Broden: ``color,object,material,part,scene,texture``).
``image`` is a path relative to ``images/``; ``ih, iw`` is the image size and
``sh, sw`` the size of the segmentation masks (usually half the image size).
A category cell holds ``;``-separated entries. An entry is either

* a PNG path relative to ``images/``: a pixel-level mask layer whose label
  code at each pixel is ``R + 256 * G`` (0 = unlabelled). Several PNGs are
  several layers; a pixel may carry one label per layer; or
* an integer label number: an image-level label (scenes, textures) that
  applies to every pixel.

``category.csv`` has ``name,first,last,count,frequency``; ``label.csv`` has
``number,name,category,frequency,coverage,syns`` where ``category`` reads
like ``material(36);object(3)`` (counts per category; the label's primary
category is the one with the largest count) and ``syns`` is a ``;``-separated
list of synonyms; ``c_<category>.csv`` has ``code,number,name,frequency,
coverage`` where ``code`` is the label's 1-based index within the category.
Label number 0 means "unlabelled" and is not a concept.

:class:`Broden` reads such a folder as a :class:`torch.utils.data.Dataset`;
:class:`BrodenWriter` writes one, deterministically and atomically. Problems
with the files raise :class:`BrodenFormatError`, which names the file and
the 1-based line (the header is line 1).
"""

from __future__ import annotations

import csv
import operator
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "Broden",
    "BrodenWriter",
    "BrodenFormatError",
    "Category",
    "Label",
    "Segmentation",
]

INDEX_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
CATEGORY_COLUMNS = ("name", "first", "last", "count", "frequency")
LABEL_COLUMNS = ("number", "name", "category", "frequency", "coverage", "syns")
CODE_COLUMNS = ("code", "number", "name", "frequency", "coverage")

# Largest label code a mask PNG can hold with 8-bit R and G channels.
MAX_LABEL = 255 + 256 * 255

_INT_ENTRY = re.compile(r"[+-]?\d+")
_LABEL_CATEGORY = re.compile(r"([^()]+?)\s*(?:\(\s*([+-]?\d+)\s*\))?")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-]+")
# Single-channel PNG modes whose pixel value is the label code itself.
_DIRECT_MODES = ("L", "I", "I;16", "I;16B", "I;16L")


class BrodenFormatError(ValueError):
    """A Broden folder does not follow the format.

    The message names the file, the 1-based line (header = line 1) where
    there is one, what is wrong and what to do. ``file`` and ``line`` hold
    the same information as attributes.
    """

    def __init__(self, message: str, *, file: str | os.PathLike | None = None,
                 line: int | None = None):
        super().__init__(message)
        self.file = Path(file) if file is not None else None
        self.line = line


def _error(file: Path, line: int | None, problem: str, fix: str) -> BrodenFormatError:
    where = f"{file} line {line}" if line is not None else str(file)
    return BrodenFormatError(f"{where}: {problem}; {fix}", file=file, line=line)


@dataclass(frozen=True)
class Category:
    """One row of ``category.csv``."""

    name: str
    first: int
    last: int
    count: int
    frequency: int


@dataclass(frozen=True)
class Label:
    """One row of ``label.csv``.

    ``category`` is the primary category (largest count in ``categories``;
    the first listed wins a tie); ``categories`` maps each category the
    label occurs in to its count, in file order.
    """

    number: int
    name: str
    category: str
    categories: dict[str, int] = field(hash=False)
    frequency: int
    coverage: float
    syns: tuple[str, ...] = ()


@dataclass
class Segmentation:
    """The labels of one category for one image.

    ``masks`` is an int64 array ``[L, sh, sw]`` of label codes, one layer per
    PNG entry in the index cell (``L`` may be 0; 0 = unlabelled pixel).
    ``image_labels`` lists the image-level label numbers, each of which
    covers every pixel.
    """

    masks: np.ndarray
    image_labels: list[int]


@dataclass(frozen=True)
class _Row:
    line: int
    image: str
    split: str
    ih: int
    iw: int
    sh: int
    sw: int
    pngs: dict[str, tuple[str, ...]]
    numbers: dict[str, tuple[int, ...]]


def _read_csv(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV file into ``(header, [(line, {column: cell})])``.

    Trailing empty header cells (Broden ends its index header with a comma)
    and blank lines are ignored; each row must have one cell per column,
    apart from trailing empty cells.
    """
    if not path.is_file():
        raise _error(path, None, "file not found",
                     "point Broden at the dataset root or re-generate the dataset")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise _error(path, 1, "file is empty",
                         f"write a header line such as '{','.join(required)}'")
        header = [h.strip() for h in header]
        while header and header[-1] == "":
            header.pop()
        for k, name in enumerate(header):
            if not name:
                raise _error(path, 1, f"column {k + 1} of the header has no name",
                             "name every column")
            if name in header[:k]:
                raise _error(path, 1, f"column {name!r} appears twice in the header",
                             "keep one of them")
        missing = [c for c in required if c not in header]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise _error(path, 1, f"missing column(s) {names}",
                         f"the header must contain {','.join(required)}")
        rows = []
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                if any(c.strip() for c in cells[len(header):]):
                    raise _error(path, line,
                                 f"row has {len(cells)} cells but the header has {len(header)} columns",
                                 "remove the extra cells or add the missing header columns")
                cells = cells[:len(header)]
            elif len(cells) < len(header):
                raise _error(path, line,
                             f"row has {len(cells)} cells but the header has {len(header)} columns",
                             "write one cell per column (empty cells are allowed)")
            rows.append((line, dict(zip(header, cells))))
    return header, rows


def _int(path: Path, line: int, column: str, value: str, *, default: int | None = None,
         minimum: int | None = None) -> int:
    text = value.strip()
    if not text and default is not None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise _error(path, line, f"column {column!r} value {value!r} is not an integer",
                     "fix the value or re-generate the dataset") from None
    if minimum is not None and number < minimum:
        raise _error(path, line, f"column {column!r} value {number} is below {minimum}",
                     "fix the value or re-generate the dataset")
    return number


def _float(path: Path, line: int, column: str, value: str, *, default: float) -> float:
    text = value.strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise _error(path, line, f"column {column!r} value {value!r} is not a number",
                     "fix the value or re-generate the dataset") from None


def _parse_label_categories(path: Path, line: int, value: str) -> dict[str, int]:
    """Parse ``material(36);object(3)``; a bare ``object`` counts 0."""
    counts: dict[str, int] = {}
    for entry in value.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        match = _LABEL_CATEGORY.fullmatch(entry)
        if match is None:
            raise _error(path, line, f"column 'category' entry {entry!r} is not of the form name(count)",
                         "write it like material(36);object(3)")
        name, count = match.group(1).strip(), int(match.group(2) or 0)
        if name in counts:
            raise _error(path, line, f"column 'category' names {name!r} twice",
                         "list each category once")
        counts[name] = count
    return counts


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


def _save_png(array: np.ndarray, path: Path) -> None:
    # No metadata chunks, no optimizer: same pixels give the same bytes.
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", optimize=False)


def _format_float(value: float) -> str:
    return f"{value:.6f}"


class BrodenWriter:
    """Write a dataset in the Broden format (Bau et al. 2017).

    Parameters
    ----------
    root:
        The dataset folder to create. It must not exist unless
        ``overwrite=True``.
    categories:
        Category names, in index.csv column order. Names use letters,
        digits, ``_`` and ``-``.
    labels:
        ``labels[j] = (name, category)`` describes label number ``j + 1``;
        each label has exactly one category and ``(name, category)`` pairs
        are unique.

    :meth:`add` writes one image and its masks; :meth:`close` writes the
    CSV files. Everything is written into a hidden folder next to ``root``
    (``.<name>.partial-*``) that is renamed to ``root`` by :meth:`close`, so
    an interrupted write never leaves a complete-looking dataset. Used as a
    context manager, the writer closes on success and discards the partial
    folder on an exception.

    The output is byte-for-byte deterministic for the same calls. Statistics
    written to the CSVs:

    * label ``frequency``: number of images in which the label appears (in
      any mask layer or as an image-level label);
    * label ``coverage``: over those images, the mean fraction of the
      ``sh x sw`` mask pixels the label covers (union of its layers); an
      image-level label covers 1.0;
    * label.csv ``category``: ``<category>(<frequency>)``;
    * category ``first``/``last``: smallest/largest label number of the
      category (0 when it has none), ``count``: its number of labels,
      ``frequency``: number of images with any label of the category.
    """

    def __init__(self, root: str | os.PathLike, categories: Sequence[str],
                 labels: Sequence[tuple[str, str]], *, overwrite: bool = False):
        self.root = Path(root)
        self.overwrite = overwrite
        self.categories = list(categories)
        self.labels = [(str(name), str(category)) for name, category in labels]
        for category in self.categories:
            if not isinstance(category, str) or not _SAFE_NAME.fullmatch(category):
                raise ValueError(f"category name {category!r} must use only letters, digits, '_' and '-'")
            if category in INDEX_COLUMNS:
                raise ValueError(f"category name {category!r} clashes with an index.csv column")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"category names repeat: {self.categories}")
        if len(self.labels) > MAX_LABEL:
            raise ValueError(f"{len(self.labels)} labels exceed the {MAX_LABEL} a mask PNG can encode")
        seen: set[tuple[str, str]] = set()
        for number, (name, category) in enumerate(self.labels, start=1):
            if not name.strip() or name != name.strip():
                raise ValueError(f"label {number} has an empty or padded name {name!r}")
            if category not in self.categories:
                raise ValueError(f"label {number} ({name!r}) has unknown category {category!r}")
            if (name, category) in seen:
                raise ValueError(f"label {number}: ({name!r}, {category!r}) is already a label")
            seen.add((name, category))
        if self.root.exists() and not overwrite:
            raise FileExistsError(f"{self.root} exists; pick another root or pass overwrite=True")
        # label_category[n] is the category index of label n (-1 for 0)
        self._label_category = np.array([-1] + [self.categories.index(c) for _, c in self.labels])
        self._frequency = [0] * (len(self.labels) + 1)
        self._coverage_sum = [0.0] * (len(self.labels) + 1)
        self._category_frequency = dict.fromkeys(self.categories, 0)
        self._rows: list[list[str]] = []
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.partial-", dir=self.root.parent))
        (self._tmp / "images").mkdir()
        self._closed = False

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> BrodenWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_labels(self, category: str, numbers: Iterable[int], what: str) -> None:
        wanted = self.categories.index(category)
        for number in numbers:
            number = int(number)
            if not 1 <= number <= len(self.labels):
                raise ValueError(f"{what}: label {number} is not between 1 and {len(self.labels)}")
            if self._label_category[number] != wanted:
                name, actual = self.labels[number - 1]
                raise ValueError(f"{what}: label {number} ({name!r}) belongs to {actual!r}, not {category!r}")

    def add(self, image: np.ndarray, split: str,
            pixel_masks: Mapping[str, Sequence[np.ndarray]] | None = None,
            image_labels: Mapping[str, Sequence[int]] | None = None, *,
            seg_size: tuple[int, int] | None = None) -> int:
        """Write one image with its labels; return its row index (0-based).

        ``image`` is uint8 ``[H, W, 3]``. ``pixel_masks[category]`` is a list
        of integer label-number maps ``[sh, sw]`` (0 = none), one per layer;
        ``image_labels[category]`` lists image-level label numbers. All masks
        of one image share ``(sh, sw)``, which defaults to the masks' shape,
        or to half the image size rounded up (Broden's convention) when the
        image has no masks; ``seg_size`` sets it explicitly.

        Files: ``images/<split>/<index:06d>.png`` and
        ``images/<split>/<index:06d>_<category>_<layer>.png`` (RGB, R = n %
        256, G = n // 256, B = 0).
        """
        if self._closed:
            raise RuntimeError("BrodenWriter is closed")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        if not isinstance(split, str) or not _SAFE_NAME.fullmatch(split):
            raise ValueError(f"split {split!r} must use only letters, digits, '_' and '-'")
        pixel_masks = dict(pixel_masks or {})
        image_labels = dict(image_labels or {})
        for category in (*pixel_masks, *image_labels):
            if category not in self.categories:
                raise ValueError(f"unknown category {category!r}; categories: {self.categories}")
        height, width = image.shape[:2]

        # Validate everything before writing any file of this row.
        layers: dict[str, list[np.ndarray]] = {}
        shapes = set()
        for category in self.categories:
            arrays = []
            for k, layer in enumerate(pixel_masks.get(category, ())):
                layer = np.asarray(layer)
                what = f"pixel_masks[{category!r}][{k}]"
                if layer.ndim != 2 or not np.issubdtype(layer.dtype, np.integer):
                    raise ValueError(f"{what} must be a 2-D integer array, got {layer.dtype} {list(layer.shape)}")
                layer = layer.astype(np.int64)
                self._check_labels(category, [n for n in np.unique(layer) if n != 0], what)
                arrays.append(layer)
                shapes.add(layer.shape)
            layers[category] = arrays
        if seg_size is not None:
            shapes.add(tuple(int(s) for s in seg_size))
        if len(shapes) > 1:
            raise ValueError(f"masks and seg_size of one image must share one size, got {sorted(shapes)}")
        sh, sw = shapes.pop() if shapes else ((height + 1) // 2, (width + 1) // 2)
        if sh < 1 or sw < 1:
            raise ValueError(f"segmentation size must be positive, got {sh}x{sw}")
        numbers: dict[str, list[int]] = {}
        for category in self.categories:
            given = [int(n) for n in image_labels.get(category, ())]
            self._check_labels(category, given, f"image_labels[{category!r}]")
            numbers[category] = list(dict.fromkeys(given))

        index = len(self._rows)
        folder = self._tmp / "images" / split
        folder.mkdir(exist_ok=True)
        stem = f"{split}/{index:06d}"
        _save_png(image, self._tmp / "images" / f"{stem}.png")
        cells = []
        for category in self.categories:
            entries = []
            for k, layer in enumerate(layers[category]):
                rgb = np.zeros((sh, sw, 3), dtype=np.uint8)
                rgb[..., 0] = layer % 256
                rgb[..., 1] = layer // 256
                entry = f"{stem}_{category}_{k}.png"
                _save_png(rgb, self._tmp / "images" / entry)
                entries.append(entry)
            entries.extend(str(n) for n in numbers[category])
            cells.append(";".join(entries))
        self._rows.append([f"{stem}.png", split, str(height), str(width), str(sh), str(sw), *cells])
        self._count(layers, numbers, sh * sw)
        return index

    def _count(self, layers: dict[str, list[np.ndarray]], numbers: dict[str, list[int]], pixels: int) -> None:
        for category in self.categories:
            coverage: dict[int, float] = {}
            present = sorted({int(n) for layer in layers[category] for n in np.unique(layer) if n != 0})
            for number in present:
                union = np.zeros(layers[category][0].shape, dtype=bool)
                for layer in layers[category]:
                    union |= layer == number
                coverage[number] = int(union.sum()) / pixels
            for number in numbers[category]:
                coverage[number] = 1.0
            for number in sorted(coverage):
                self._frequency[number] += 1
                self._coverage_sum[number] += coverage[number]
            if coverage:
                self._category_frequency[category] += 1

    def _write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        with open(self._tmp / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    def close(self) -> Path:
        """Write the CSV files and move the dataset into ``root``; return ``root``.

        Closing twice is harmless.
        """
        if self._closed:
            return self.root
        self._write_csv("index.csv", [*INDEX_COLUMNS, *self.categories], self._rows)
        label_rows, code_rows = [], {c: [] for c in self.categories}
        for number, (name, category) in enumerate(self.labels, start=1):
            frequency = self._frequency[number]
            coverage = self._coverage_sum[number] / frequency if frequency else 0.0
            label_rows.append([number, name, f"{category}({frequency})", frequency,
                               _format_float(coverage), ""])
            rows = code_rows[category]
            rows.append([len(rows) + 1, number, name, frequency, _format_float(coverage)])
        self._write_csv("label.csv", LABEL_COLUMNS, label_rows)
        category_rows = []
        for category in self.categories:
            members = [row[1] for row in code_rows[category]]
            category_rows.append([category, min(members, default=0), max(members, default=0),
                                  len(members), self._category_frequency[category]])
            self._write_csv(f"c_{category}.csv", CODE_COLUMNS, code_rows[category])
        self._write_csv("category.csv", CATEGORY_COLUMNS, category_rows)

        if self.root.exists():
            if not self.overwrite:
                raise FileExistsError(f"{self.root} appeared while writing; the finished dataset "
                                      f"is left in {self._tmp}")
            old = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.old-", dir=self.root.parent))
            old.rmdir()
            os.replace(self.root, old)
            os.replace(self._tmp, self.root)
            shutil.rmtree(old)
        else:
            os.replace(self._tmp, self.root)
        self._closed = True
        return self.root

    def abort(self) -> None:
        """Discard everything written so far; ``root`` is left untouched."""
        if not self._closed:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._closed = True
