"""Reading Broden's CSV tables and checking their cells.

Every problem raises :class:`~.errors.BrodenFormatError` naming the file and
the 1-based line (the header is line 1).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Sequence

from .errors import _error

_LABEL_CATEGORY = re.compile(r"([^()]+?)\s*(?:\(\s*([+-]?\d+)\s*\))?")


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
