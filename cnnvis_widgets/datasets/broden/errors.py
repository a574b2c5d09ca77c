"""The error a Broden folder that does not follow the format raises.

Its message names the file and the 1-based line (the header is line 1)
where there is one, what is wrong and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BrodenFormatError"]


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
