"""What a ``devices=`` job sends its workers: the engine and its arguments, in one file.

The file holds this process's ``sys.path`` (plain pickle, read first, so that a worker imports what this
process imports; :mod:`.worker` reads it before importing anything) and then ``(fn, kwargs)`` pickled by
cloudpickle (plain pickle reads it): classes and functions defined in
``__main__`` (a notebook cell, a script) travel by value, lambdas included; everything else by reference, as
pickle does. What cannot be pickled (an open file, a lock, a generator) is named in one error here, before any
worker starts.
"""

from __future__ import annotations

import pickle
import sys

import cloudpickle
import numpy as np
import torch

_NAMES = {"model": "model", "dataset": "dataset", "generator": "generator", "init": "init"}
_SAFE = (torch.Tensor, np.ndarray, str, bytes, int, float, bool, type(None))


def write(path, fn, kwargs: dict) -> None:
    """Write the job ``fn(**kwargs)`` to ``path``; a ``TypeError`` naming the object that cannot be sent."""
    try:
        with open(path, "wb") as f:
            pickle.dump({"sys_path": list(sys.path)}, f)
            cloudpickle.dump((fn, kwargs), f, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:
        raise TypeError(unsendable(fn, kwargs, err)) from err


def dumps(obj) -> bytes:
    """A worker's result, by value where it holds objects of ``__main__`` (they come back as the originals)."""
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def unsendable(fn, kwargs: dict, err: Exception) -> str:
    """The message for an argument of ``fn`` that cannot be pickled: which object, of which type, and why."""
    engine = getattr(fn, "__name__", "the job")
    for name, value in kwargs.items():
        found = _culprit(value, _NAMES.get(name, name), 0, set())
        if found is not None:
            where, obj, why = found
            kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
            return (f"{where} (a {kind}) cannot be sent to the worker processes of {engine}(devices=...): {why}. "
                    "Keep such objects out of what the engine receives (e.g. open the file or create the lock where "
                    "it is used, inside the method), or run without devices=.")
    return f"The arguments of {engine}(devices=...) cannot be sent to worker processes: {err}. Run without devices=."


def _culprit(obj, path: str, depth: int, seen: set):
    """``(path, object, reason)`` of the deepest part of ``obj`` that cannot be pickled, or None if it can."""
    if isinstance(obj, _SAFE) or id(obj) in seen:
        return None
    seen.add(id(obj))
    try:
        cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return None
    except Exception as err:
        reason = str(err) or type(err).__name__
    if depth < 8:
        for suffix, child in _children(obj):
            found = _culprit(child, path + suffix, depth + 1, seen)
            if found is not None:
                return found
    return path, obj, reason


def _children(obj):
    if isinstance(obj, torch.nn.Module):
        yield from ((f".{name}", module) for name, module in obj._modules.items())
        yield from ((f".{name}", value) for name, value in vars(obj).items()
                    if name not in ("_modules", "_parameters", "_buffers"))
    elif isinstance(obj, dict):
        yield from ((f"[{key!r}]", value) for key, value in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield from ((f"[{i}]", value) for i, value in enumerate(obj))
    elif hasattr(obj, "__dict__"):
        yield from ((f".{name}", value) for name, value in vars(obj).items())


__all__ = ["dumps", "unsendable", "write"]
