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

Modules:

* :mod:`.schema`: the tables' columns, the mask code range, and the records
  (:class:`Category`, :class:`Label`, :class:`Segmentation`) rows parse into;
* :mod:`.errors`: :class:`BrodenFormatError`;
* :mod:`.csv_tables`: reading a CSV table and checking its header, rows and cells;
* :mod:`.reader`: :class:`Broden`, the reader;
* :mod:`.writer`: :class:`BrodenWriter`, the writer.
"""

from .errors import BrodenFormatError
from .reader import Broden
# The column tuples and MAX_LABEL stay importable from here, as from the former broden.py.
from .schema import (
    CATEGORY_COLUMNS,
    CODE_COLUMNS,
    INDEX_COLUMNS,
    LABEL_COLUMNS,
    MAX_LABEL,
    Category,
    Label,
    Segmentation,
)
from .writer import BrodenWriter

__all__ = [
    "Broden",
    "BrodenWriter",
    "BrodenFormatError",
    "Category",
    "Label",
    "Segmentation",
]
