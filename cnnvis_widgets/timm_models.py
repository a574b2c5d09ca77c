"""timm's side of loading a model by name: the import, the name check, the pretrained download and what its
``pretrained_cfg`` says about preprocessing.

timm (Wightman, "PyTorch Image Models", https://github.com/huggingface/pytorch-image-models) is an optional
dependency (``pip install timm``, or the ``timm`` extra): nothing here imports it before a ``"timm/..."`` model
is asked for. Its models carry their evaluation preprocessing in ``model.pretrained_cfg`` (``mean``, ``std``,
``input_size``, ``crop_pct``, ``crop_mode``, ``interpolation``), which :func:`model_settings` reads into the
arguments of :class:`~cnnvis_widgets.Model` the way timm's ``resolve_data_config`` +
``transforms_imagenet_eval`` use them.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

from .model import IMAGENET_MEAN, IMAGENET_STD
from .resizing import ResizePolicy

# timm's crop_mode → the resize policy that does the same (cnnvis_widgets.resizing)
CROP_MODES = {"center": "crop", "squash": "squash", "border": "pad"}


def import_timm():
    """The ``timm`` module, or an ImportError that says how to install it."""
    try:
        import timm
    except ImportError as err:
        raise ImportError("Loading 'timm/...' models needs timm: pip install timm (or pip install "
                          "'cnnvis-widgets[timm]').") from err
    return timm


def check_name(timm, name: str) -> None:
    """Fail on an architecture or pretrained tag that timm does not have, listing close matches."""
    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ValueError(f"timm has no model {arch!r}.{hint} See timm.list_models('*{arch[:4]}*') for the names, "
                         f"and load one as cv.load_model('timm/<name>').")
    if tag:
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
        if tag not in tags:
            raise ValueError(f"timm's {arch} has no pretrained tag {tag!r}; its tags: {', '.join(tags) or 'none'}. "
                             f"Use 'timm/{arch}' for the default weights.")


def create(timm, name: str, pretrained: bool) -> nn.Module:
    """``timm.create_model(name)``; with ``pretrained``, a failed download says where to put the file instead."""
    if not pretrained:
        return timm.create_model(name, pretrained=False)
    cfg = timm.models.get_pretrained_cfg(name)
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})
    if not (cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("file")):
        raise ValueError(f"timm has no pretrained weights for {name!r}; pass weights=None for a randomly "
                         "initialized model, or weights='path/to/file' for your own.")
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as err:  # no network: LocalEntryNotFoundError, URLError, OSError, ...
        raise RuntimeError(_offline_message(name, cfg, err)) from err


def _offline_message(name: str, cfg: dict, err: Exception) -> str:
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE as cache
        except ImportError:
            cache = str(Path.home() / ".cache" / "huggingface" / "hub")
        folder = Path(cache) / ("models--" + hub_id.replace("/", "--"))
        url = f"https://huggingface.co/{hub_id}/resolve/main/model.safetensors"
        where = (f"Without internet here: on a machine with it, run `huggingface-cli download {hub_id}` (or load "
                 f"the model once) and copy its cache folder {folder.name} into {cache} here (set HF_HUB_OFFLINE=1 "
                 f"to skip the network retries), or download {url} and pass weights='path/to/model.safetensors'")
    else:
        url = cfg.get("url") or cfg.get("file")
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(str(url)).name
        where = f"On a machine without internet, download {url} elsewhere and put it at {cache}, or pass " \
                "weights='path/to/file'"
    return (f"Could not get the pretrained weights of timm's {name} ({type(err).__name__}: {err}). {where}; "
            "weights=None gives a randomly initialized model.")


def model_settings(module: nn.Module, timm) -> dict:
    """:class:`~cnnvis_widgets.Model` arguments from ``module.pretrained_cfg``: mean, std, input size, the resize
    policy (``crop_mode`` + ``crop_pct`` + ``interpolation``) and the ImageNet class names where timm knows them."""
    cfg = getattr(module, "pretrained_cfg", None) or {}
    mean = tuple(cfg.get("mean") or IMAGENET_MEAN)
    input_size = tuple(cfg.get("input_size") or (3, 224, 224))
    interpolation = cfg.get("interpolation") or "bilinear"
    interpolation = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
    fit = CROP_MODES.get(cfg.get("crop_mode") or "center", "crop")
    fit = ResizePolicy(fit, crop_fraction=cfg.get("crop_pct") or 0.875,  # timm's DEFAULT_CROP_PCT
                       interpolation=interpolation,
                       fill=mean if fit == "pad" else 0.5)  # border mode fills with the mean, as timm's
    return dict(mean=mean, std=tuple(cfg.get("std") or IMAGENET_STD), input_size=input_size, fit=fit,
                classes=_class_names(module, timm))


def _class_names(module: nn.Module, timm) -> list[str] | None:
    """Short ImageNet class names ("tench", ...) for heads trained on an ImageNet subset timm ships the labels of."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(module)
        if not subset:
            return None
        names = [d.split(",")[0].strip() for d in ImageNetInfo(subset).label_descriptions()]
    except Exception:  # an older timm, or a head of another size: no names
        return None
    classifier = getattr(module, "num_classes", None)
    return names if classifier in (None, len(names)) else None
