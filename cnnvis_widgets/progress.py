"""Progress of a streamed pass over a dataset: a tqdm bar, or the caller's own callback.

A pass with nothing to do (no images, or a rank of a process group whose shard is empty) is done from the start:
a callback receives 1.0 at once.
"""

from __future__ import annotations

from typing import Callable


def progress_reporter(progress, total: int, desc: str):
    """A tqdm bar (or the user's callback) and an ``advance(n)`` function.

    ``progress`` is ``True``/``False`` (show a bar or not) or a callable that receives the finished share in
    [0, 1] after every batch; ``advance(n)`` reports ``n`` more images done. The bar is ``None`` for a callback.
    """
    if callable(progress):
        bar = CallbackBar(progress, total)
        return None, bar.update
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False)
    return bar, bar.update


class CallbackBar:
    """A progress callback in a tqdm bar's place: ``update(n)`` reports the fraction done (1.0 when ``total``
    is 0: nothing to do is done)."""

    def __init__(self, callback: Callable[[float], None], total: int):
        self.callback, self.total, self.done = callback, total, 0

    def update(self, n: int) -> None:
        self.done += n
        self.callback(self.done / self.total if self.total > 0 else 1.0)

    def close(self) -> None:
        pass


__all__ = ["CallbackBar", "progress_reporter"]
