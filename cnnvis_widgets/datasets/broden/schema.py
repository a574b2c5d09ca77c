"""The Broden format's vocabulary: table columns, mask codes, and parsed records.

``index.csv`` has the columns :data:`INDEX_COLUMNS` followed by one column
per category; ``category.csv`` has :data:`CATEGORY_COLUMNS`; ``label.csv``
has :data:`LABEL_COLUMNS` and ``c_<category>.csv`` has :data:`CODE_COLUMNS`,
where ``code`` is the label's 1-based index within the category. A mask PNG
codes the label number at each pixel as ``R + 256 * G`` (0 = unlabelled), so
label numbers go up to :data:`MAX_LABEL`.

:class:`Category` and :class:`Label` are rows of ``category.csv`` and
``label.csv``; :class:`Segmentation` is one category's labels for one image;
``_Row`` is a parsed ``index.csv`` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "INDEX_COLUMNS",
    "CATEGORY_COLUMNS",
    "LABEL_COLUMNS",
    "CODE_COLUMNS",
    "MAX_LABEL",
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
