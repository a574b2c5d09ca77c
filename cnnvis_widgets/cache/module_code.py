"""The code a model runs, as part of its fingerprint: editing a ``forward`` must not return the old result.

:func:`code_fingerprint` digests the compiled code (bytecode, constants, names; no source file needed, so classes
defined in a notebook cell or by ``exec`` count too) of:

- every function defined on the classes of the model's modules and on their base classes (``forward`` and every
  method it may call: properties, static and class methods, functions a decorator wraps), except torch's own
  classes, whose code changes only with torch's version;
- the Python functions those reach through global names in the same namespace (helpers defined beside the
  classes, in the same file or notebook), and classes named there, transitively;
- the forward hooks and pre-hooks registered on the modules;
- the plain settings a module keeps as attributes (numbers, strings, flags, tuples of them; e.g. a temperature
  set in ``__init__``), which ``repr(module)`` need not show.

What it cannot see: code behind a C extension or in another package's functions (torch, numpy, a helper
imported from another file), and values a function reads from global variables (a module-level constant
changed after the fact). Bypass the cache for such models (``cache=False`` or ``CNNVIS_RESULT_CACHE=off``).
"""

from __future__ import annotations

import hashlib
import types

import torch

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks")


def _is_torch(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return cls is object or module == "torch" or module.startswith("torch.")


def _function(value):
    """The Python function behind a class attribute (method, static or class method, property getter), or None."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    while hasattr(value, "__wrapped__") and not isinstance(value, types.FunctionType):
        value = value.__wrapped__
    return value if isinstance(value, types.FunctionType) else None


class _Digest:
    """Walks functions and classes breadth-first, in a deterministic order, hashing each once."""

    def __init__(self):
        self.hash = hashlib.sha256()
        self.queue: list[types.FunctionType] = []
        self.seen: set[int] = set()
        self.namespaces: dict[int, dict] = {}  # globals of the functions found on the model's classes

    def plain(self, value) -> str:
        """A stable text for a constant: plain values by repr, code by digest, anything else by its type."""
        if isinstance(value, _PLAIN):
            return repr(value)
        if isinstance(value, (tuple, list, frozenset, set)):
            items = [self.plain(v) for v in value]
            return f"{type(value).__name__}({','.join(sorted(items) if isinstance(value, (set, frozenset)) else items)})"
        if isinstance(value, types.CodeType):
            return self.code(value)
        if isinstance(value, types.FunctionType):
            self.add(value)
            return f"function {value.__qualname__}"
        return f"<{type(value).__module__}.{type(value).__qualname__}>"

    def code(self, code: types.CodeType) -> str:
        parts = [code.co_name, code.co_code.hex(), repr(code.co_names), repr(code.co_varnames),
                 repr(code.co_freevars), repr(code.co_cellvars), *(self.plain(c) for c in code.co_consts)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def add(self, fn: types.FunctionType) -> None:
        if id(fn) not in self.seen:
            self.seen.add(id(fn))
            self.queue.append(fn)

    def add_class(self, cls: type) -> None:
        for base in cls.__mro__:
            if _is_torch(base) or id(base) in self.seen:
                continue
            self.seen.add(id(base))
            self.hash.update(f"class {base.__qualname__}\n".encode())
            for name in sorted(vars(base)):
                fn = _function(vars(base)[name])
                if fn is not None:
                    self.namespaces.setdefault(id(fn.__globals__), fn.__globals__)
                    self.add(fn)

    def run(self) -> None:
        while self.queue:
            fn = self.queue.pop(0)
            self.hash.update(f"def {fn.__qualname__}\n{self.code(fn.__code__)}\n".encode())
            self.hash.update(self.plain((fn.__defaults__, tuple(sorted((fn.__kwdefaults__ or {}).items())))).encode())
            for cell in fn.__closure__ or ():
                try:
                    self.hash.update(self.plain(cell.cell_contents).encode())
                except ValueError:  # an empty cell
                    pass
            if id(fn.__globals__) not in self.namespaces:
                continue  # a helper's own helpers are followed only within the model's namespaces
            for name in _names(fn.__code__):
                value = fn.__globals__.get(name)
                if isinstance(value, types.FunctionType) and id(value.__globals__) in self.namespaces:
                    self.add(value)
                elif isinstance(value, type) and not _is_torch(value) and _defined_in(value, self.namespaces):
                    self.add_class(value)


def _names(code: types.CodeType) -> list[str]:
    """Global and attribute names a code object and the code nested in it (lambdas, comprehensions) use."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_names(const))
    return names


def _defined_in(cls: type, namespaces: dict[int, dict]) -> bool:
    return any(id(getattr(fn, "__globals__", None)) in namespaces for fn in map(_function, vars(cls).values()) if fn)


def code_fingerprint(module: torch.nn.Module) -> str:
    """A digest of the code ``module`` runs beyond torch's own, its hooks and its plain settings (see the module
    docstring for what it covers)."""
    digest = _Digest()
    for name, sub in module.named_modules():
        digest.hash.update(f"module {name}: {type(sub).__qualname__}\n".encode())
        digest.add_class(type(sub))
        for hooks in _HOOK_DICTS:
            for hook in getattr(sub, hooks, {}).values():
                fn = _function(getattr(hook, "__func__", hook)) or _function(getattr(type(hook), "__call__", None))
                digest.hash.update(f"{hooks} {digest.plain(fn) if fn else type(hook).__qualname__}\n".encode())
        settings = sorted((k, v) for k, v in vars(sub).items()
                          if not k.startswith("_") and k != "training" and isinstance(v, (*_PLAIN, tuple)))
        digest.hash.update(digest.plain(tuple(f"{k}={digest.plain(v)}" for k, v in settings)).encode())
    digest.run()
    return digest.hash.hexdigest()[:20]


__all__ = ["code_fingerprint"]
