"""Progress of a streamed pass over a dataset: a tqdm bar, or the caller's own callback."""

from __future__ import annotations

from typing import Callable


def progress_reporter(progress, total: int, desc: str):
    """A tqdm bar (or the user's callback) and an ``advance(n)`` function.

    ``progress`` is ``True``/``False`` (show a bar or not) or a callable that receives the finished share in
    [0, 1] after every batch; ``advance(n)`` reports ``n`` more images done. The bar is ``None`` for a callback.
    """
    if callable(progress):
        done = [0]

        def report(n: int):
            done[0] += n
            progress(done[0] / total)

        return None, report
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False)
    return bar, bar.update


class CallbackBar:
    """A progress callback in a tqdm bar's place: ``update(n)`` reports the fraction done."""

    def __init__(self, callback: Callable[[float], None], total: int):
        self.callback, self.total, self.done = callback, max(1, total), 0

    def update(self, n: int) -> None:
        self.done += n
        self.callback(self.done / self.total)

    def close(self) -> None:
        pass


__all__ = ["CallbackBar", "progress_reporter"]
