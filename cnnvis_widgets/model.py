"""The model wrapper: one object that every engine takes.

``Model`` wraps any ``nn.Module`` with what visualization needs and the module itself does not carry: the
input normalization, the input size and how images of other sizes are brought to it (the resize policy
``fit``), class names, the table of addressable layers (dotted names, output shapes, receptive fields), and
hooks that are always removed. The wrapped module is never mutated:
engines run it inside :meth:`Model.inference`, which restores every submodule's train/eval flag and every
parameter's ``requires_grad`` on the way out, also after an exception or a KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from .images import ImageSource
from .receptive_field import ReceptiveField, trace_layers
from .resizing import ResizePolicy

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class LayerNotFoundError(KeyError):
    """A layer name that the model does not have; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Layer:
    """One addressable layer: its dotted name in ``named_modules()`` and what a forward pass shows of it."""

    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    receptive_field: ReceptiveField | None
    calls: int = 1  # times the module runs in one forward; engines read its last call (its output)
    output_type: str = "tensor"  # or the type name of a non-tensor output ("tuple", "dict", ...)

    @property
    def units(self) -> int | None:
        """Channels of a conv layer's output, or features of a linear layer."""
        return self.output_shape[0] if self.output_shape else None

    @property
    def spatial(self) -> bool:
        return self.output_shape is not None and len(self.output_shape) == 3


class LayerTable(tuple):
    """The model's layers in ``named_modules()`` order; index by position or by name."""

    def __getitem__(self, key):
        if isinstance(key, str):
            for layer in self:
                if layer.name == key:
                    return layer
            raise LayerNotFoundError(_unknown_layer_message(key, [layer.name for layer in self]))
        return super().__getitem__(key)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self]

    def __repr__(self) -> str:
        rows = [("layer", "type", "output", "receptive field (size / stride / start)")]
        for layer in self:
            shape = "x".join(map(str, layer.output_shape)) if layer.output_shape else "-"
            rf = layer.receptive_field
            rf_text = f"{rf.size[0]}x{rf.size[1]} / {rf.stride[0]} / {rf.start[0]}" if rf else "whole input"
            if rf and rf.global_context:
                rf_text += " (+ global gate)"
            rows.append((layer.name, layer.kind, shape, rf_text if layer.output_shape else "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _check_normalization(mean, std, input_size) -> None:
    """``mean`` and ``std`` must have one entry per input channel, or one for all."""
    channels = input_size[0]
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) not in (1, channels):
            example = ", ".join(["0.5"] * channels) + ("," if channels == 1 else "")
            default = " (the default is ImageNet's RGB statistics)" if values in (IMAGENET_MEAN, IMAGENET_STD) else ""
            raise ValueError(f"{name} has {len(values)} entries{default} but input_size={tuple(input_size)} gives the "
                             f"model {channels} input channel(s): pass {channels} values, one per channel, or one for "
                             f"all, e.g. mean=({example}), std=({example}); or mean=None, std=None for none.")
    if (mean is None) != (std is None):
        raise ValueError("Pass mean and std together (both None: the module takes images in [0, 1] as they are).")


def _unknown_layer_message(name: str, valid: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"The model has no layer {name!r}.{hint} Valid layer names: {', '.join(valid)}."


def _check_single_input(module: nn.Module) -> None:
    """Fail early, saying what to do, when ``module.forward`` needs more than the one image batch engines give."""
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin, a C extension): the forward will tell
        return
    required = [p.name for p in parameters if p.default is p.empty and p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(required) > 1:
        raise TypeError(_more_inputs_message(module, f"forward({', '.join(required)}) has {len(required)} required "
                                                     "inputs"))


def _more_inputs_message(module: nn.Module, detail: str) -> str:
    name = type(module).__name__
    return (f"{name}'s forward needs more than one input ({detail}), but visualization runs the model on one batch "
            f"of images [N, C, H, W]. Wrap it in a module that takes one image batch and supplies the rest, e.g.\n"
            f"    class ImagesOnly(torch.nn.Module):\n"
            f"        def __init__(self, net, extra):\n"
            f"            super().__init__(); self.net, self.extra = net, extra\n"
            f"        def forward(self, images):\n"
            f"            return self.net(images, self.extra)\n"
            f"and pass cv.Model(ImagesOnly(net, extra), ...); its layers are then named 'net.<layer>'.")


class Model:
    """A network plus what visualization needs to know about it.

    Args:
        module: any ``nn.Module`` taking a batch of normalized images [N, C, H, W].
        mean, std: per-channel input normalization; images given to engines are in [0, 1] with the model's
            C channels and the wrapper applies ``(x - mean) / std`` before the module. C values, or one for
            every channel. Default: ImageNet's (RGB: a model with another channel count must pass its own).
        input_size: (channels, height, width) the model expects; engines resize images to it and read them
            with that many channels (1: grayscale, 3: RGB, ...; see :mod:`cnnvis_widgets.images`).
        name: shown in widgets and used in cache keys.
        classes: names of the output classes, if known.
        fit: how engines bring an image of another size to ``input_size`` (:mod:`cnnvis_widgets.resizing`):
            ``"squash"`` (default: resize to it), ``"crop"`` (shorter side to ``size / 0.875``, centre cut, as
            torchvision's and timm's evaluation transforms), ``"pad"`` (letterbox, filled with ``mean``), or a
            :class:`~cnnvis_widgets.ResizePolicy` for another crop fraction or interpolation. Images already at
            the input size are used as they are. :func:`~cnnvis_widgets.load_model` sets the zoo's own.
    """

    def __init__(self, module: nn.Module, mean: Iterable[float] | None = IMAGENET_MEAN,
                 std: Iterable[float] | None = IMAGENET_STD, input_size: tuple[int, int, int] = (3, 224, 224),
                 name: str | None = None, classes: list[str] | None = None, fit: ResizePolicy | str = "squash"):
        if not isinstance(module, nn.Module):
            raise TypeError(f"Model needs a torch.nn.Module, got {type(module).__name__}; "
                            "wrap your network's module, e.g. cv.Model(my_net, input_size=(3, 224, 224)).")
        if len(tuple(input_size)) != 3:
            raise ValueError(f"input_size must be (channels, height, width), got {input_size!r}.")
        _check_single_input(module)
        self.module = module
        self.mean = tuple(float(m) for m in mean) if mean is not None else None
        self.std = tuple(float(s) for s in std) if std is not None else None
        self.input_size = tuple(int(s) for s in input_size)
        self.fit = ResizePolicy.of(fit, fill=self.mean)
        _check_normalization(self.mean, self.std, self.input_size)
        self.name = name or type(module).__name__
        self.classes = list(classes) if classes is not None else None
        self._layers: LayerTable | None = None

    def __repr__(self) -> str:
        return (f"Model({self.name!r}, input_size={self.input_size}, fit={self.fit.fit!r}, layers={len(self.layers)}, "
                f"device={self.device})")

    # -- what the module is -------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """The number of input channels (``input_size[0]``): 3 for RGB, 1 for grayscale, ..."""
        return self.input_size[0]

    def image_source(self, images, fit: ResizePolicy | str | None = None) -> ImageSource:
        """``images`` (anything :class:`~cnnvis_widgets.images.ImageSource` reads) as a source at the
        model's input size and channel count, resized by ``fit`` (default: the model's policy,
        :attr:`fit`); every engine reads its images this way."""
        return ImageSource(images, self.input_size[1:], channels=self.channels, fit=self.fit if fit is None else fit)

    def at_input_size(self, height: int, width: int | None = None) -> "Model":
        """The same network (the module is shared, not copied) expecting images of ``height`` x ``width``
        (default square): for fully convolutional networks with global pooling, such as EfficientNet or
        ResNet, which run at any size. Smaller inputs make every engine cheaper; layer shapes are traced anew."""
        size = (self.channels, int(height), int(width if width is not None else height))
        if min(size[1:]) < 1:
            raise ValueError(f"at_input_size needs a positive height and width, got {size[1:]}.")
        resized = Model(self.module, self.mean, self.std, size, name=self.name, classes=self.classes, fit=self.fit)
        try:
            resized.layers  # trace now: a network with fixed-size layers fails here, not in an engine
        except RuntimeError as err:
            raise ValueError(
                f"{self.name or type(self.module).__name__} does not run at {size[1]} x {size[2]} px ({err}); "
                f"networks with fixed-size layers (a Linear after a flatten) need their own input size "
                f"{self.input_size[1]} x {self.input_size[2]}: resize the images instead.") from err
        return resized

    @property
    def device(self) -> torch.device:
        for tensor in self.module.parameters():
            return tensor.device
        for tensor in self.module.buffers():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for tensor in self.module.parameters():
            return tensor.dtype
        return torch.float32

    @property
    def layers(self) -> LayerTable:
        """Every addressable layer: dotted name, module type, output shape, receptive field."""
        if self._layers is None:
            with self.inference():
                try:
                    traces = trace_layers(self.module, self.input_size)
                except TypeError as err:
                    if "missing" in str(err) and "argument" in str(err):
                        raise TypeError(_more_inputs_message(self.module, str(err))) from err
                    raise
            self._layers = LayerTable(
                Layer(t.name, t.kind, t.output_shape, t.receptive_field, t.calls, t.output_type)
                for t in traces.values() if t.calls > 0
            )
        return self._layers

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; a wrong name raises an error that lists the valid ones."""
        return self.layers[name]

    def layers_of(self, *types: type) -> list[Layer]:
        """The layers whose module is an instance of one of ``types`` (subclasses count: EfficientNet's
        same-padding convolutions are ``nn.Conv2d`` layers), in :attr:`layers` order."""
        modules = dict(self.module.named_modules())
        return [layer for layer in self.layers if isinstance(modules.get(layer.name), types)]

    def submodule(self, name: str) -> nn.Module:
        modules = dict(self.module.named_modules())
        if name not in modules or name == "":
            raise LayerNotFoundError(_unknown_layer_message(name, self.layers.names))
        return modules[name]

    def fingerprint(self) -> str:
        """A short hash of the module's architecture, code (``forward`` and the methods and helpers it may call,
        hooks) and weights, for checkpoint and cache keys (:func:`cnnvis_widgets.cache.fingerprints.module_fingerprint`)."""
        from .cache.fingerprints import module_fingerprint

        return module_fingerprint(self.module)[:16]

    # -- running it ---------------------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images [N, C, H, W] in [0, 1] → the module's input."""
        if self.mean is None:
            return images
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Forward images [N, C, H, W] in [0, 1] through the module (in whatever mode the module is in)."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"{self.name} takes images [N, {self.channels}, H, W] (input_size={self.input_size}); "
                             f"got shape {tuple(images.shape)}. Read them with model.image_source(images), which "
                             "converts grayscale and RGB where that is unambiguous.")
        return self.module(self.normalize(images.to(self.device, self.dtype)))

    @contextlib.contextmanager
    def inference(self) -> Iterator[nn.Module]:
        """Eval mode and frozen parameters for the duration; every flag restored afterwards."""
        modes = [(m, m.training) for m in self.module.modules()]
        grads = [(p, p.requires_grad) for p in self.module.parameters()]
        try:
            self.module.eval()
            for p, _ in grads:
                p.requires_grad_(False)
            yield self.module
        finally:
            for m, training in modes:
                m.training = training
            for p, requires_grad in grads:
                p.requires_grad_(requires_grad)

    @contextlib.contextmanager
    def hooks(self) -> Iterator["HookSet"]:
        """A set of forward hooks on named layers, all removed when the block exits, however it exits."""
        hooks = HookSet(self)
        try:
            yield hooks
        finally:
            hooks.remove()


class HookSet:
    """Forward hooks registered through :meth:`Model.hooks`."""

    def __init__(self, model: Model):
        self._model = model
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def forward(self, layer: str, fn: Callable[[nn.Module, tuple, object], object]) -> None:
        """Call ``fn(module, inputs, output)`` after ``layer`` runs (its return value replaces the output)."""
        self._model.layer(layer)  # a wrong name fails here, with the list of names
        self._handles.append(self._model.submodule(layer).register_forward_hook(fn))

    def forward_pre(self, layer: str, fn: Callable[[nn.Module, tuple], object]) -> None:
        """Call ``fn(module, inputs)`` before ``layer`` runs (its return value, if any, replaces the inputs)."""
        self._model.layer(layer)
        self._handles.append(self._model.submodule(layer).register_forward_pre_hook(fn))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


def feature_layer(model: Model, name: str, purpose: str) -> Layer:
    """The layer ``name``, checked to output one tensor shaped as a feature map [N, C, H, W] or a vector [N, C],
    which is what ``purpose`` (an engine's name, for the message) reads units from.

    Anything else (a token sequence [N, L, D], a tuple, a 5-D tensor) raises a ValueError that names the shape
    and the nearest layers that work.
    """
    layer = model.layer(name)
    if layer.output_type == "tensor" and layer.output_shape is not None and len(layer.output_shape) in (1, 3):
        return layer
    shape = "[N, " + ", ".join(map(str, layer.output_shape)) + "]" if layer.output_shape is not None else None
    if layer.output_type != "tensor":
        what = f"a {layer.output_type}" + (f" (its first tensor {shape})" if shape else " without tensors")
    else:
        what = f"a tensor {shape}"
    hint = ""
    if layer.output_type == "tensor" and layer.output_shape is not None and len(layer.output_shape) == 2:
        what += ", a token sequence [N, L, D] by its shape"
        tokens, dim = layer.output_shape
        grids = [(extra, math.isqrt(tokens - extra)) for extra in (0, 1) if tokens > extra]
        grids = [(extra, side) for extra, side in grids if side * side == tokens - extra]
        if grids:  # patch tokens on a square grid, maybe after a class token (ViT)
            extra, side = grids[0]
            drop = "[:, 1:]" if extra else ""
            hint = (f" To see its tokens as units, wrap the model so that a module returns them as a map, e.g. "
                    f"tokens{drop}.transpose(1, 2).reshape(N, {dim}, {side}, {side})"
                    f"{' (dropping the class token)' if extra else ''}.")
    elif layer.output_type != "tensor":
        hint = " Or wrap that module so that it returns one tensor."
    usable = [i for i, l in enumerate(model.layers) if l.output_type == "tensor" and l.output_shape is not None
              and len(l.output_shape) in (1, 3)]
    here = model.layers.names.index(name)
    nearest = sorted(usable, key=lambda i: (abs(i - here), i))[:3]
    suggestion = ", ".join(f"{model.layers[i].name!r} ({'x'.join(map(str, model.layers[i].output_shape))})"
                           for i in sorted(nearest))
    pick = f" Pick a layer that does, e.g. {suggestion} (see model.layers)." if suggestion else \
        " No layer of this model does; wrap it so that one returns [N, C, H, W] or [N, C]."
    message = (f"Layer {name!r} outputs {what}, not a feature map [N, C, H, W] or a vector [N, C], which "
               f"{purpose} reads units from.{pick}{hint}")
    raise ValueError(message)


class StopForward(Exception):
    """Raised from a hook to end a forward pass once the layers of interest have run."""


def run_until(model: Model, images: torch.Tensor, layer: str, fn: Callable[[torch.Tensor], None]) -> None:
    """Forward ``images`` ([N, C, H, W] in [0, 1]) and call ``fn`` on ``layer``'s output, skipping the layers after it.

    A module called several times in one forward (e.g. ResNet's shared ``relu``) is read at its last call,
    the one whose shape and receptive field ``model.layers`` reports. ``fn`` runs inside the hook, before
    any in-place operation of the next layer (e.g. an in-place ReLU) can change the tensor. Call inside
    :meth:`Model.inference`.
    """
    last_call = model.layer(layer).calls
    seen = [0]

    def hook(module, inputs, output):
        seen[0] += 1
        if seen[0] == last_call:
            fn(output[0] if isinstance(output, (tuple, list)) else output)
            raise StopForward

    with model.hooks() as hooks:
        hooks.forward(layer, hook)
        try:
            model(images)
        except StopForward:
            return
    raise RuntimeError(f"Layer {layer!r} did not run in the forward pass; pick a layer from model.layers "
                       "that the module's forward actually calls.")
