"""First-layer filters shown directly as images (Zeiler & Fergus 2014, Fig. 5/6; Krizhevsky et al. 2012, Fig. 3)."""

from __future__ import annotations

import numpy as np
import torch

from ..model import Model


def filter_images(model: Model, layer: str | None = None) -> np.ndarray:
    """The filters of a conv layer on the image input as uint8 images [out_channels, C, kh, kw].

    C is the model's channel count: a filter of an RGB model shows as a colour picture, one of a grayscale
    model as a grey one (widgets show other counts as described in :func:`~cnnvis_widgets.images.display_array`).
    Each filter is scaled on its own so that zero maps to mid-grey and its largest absolute weight to
    0 or 255, which keeps the sign visible and makes weak filters as readable as strong ones.

    Args:
        layer: a Conv2d layer whose input is the image; default: the first such layer.
    """
    channels = model.channels
    if layer is None:
        layer = next((name for name, m in model.module.named_modules()
                      if isinstance(m, torch.nn.Conv2d) and m.in_channels == channels), None)
        if layer is None:
            raise ValueError(f"The model has no Conv2d layer on its {channels}-channel input; pass layer= with a "
                             "conv layer name.")
    module = model.submodule(layer)
    if not isinstance(module, torch.nn.Conv2d) or module.in_channels != channels or module.groups != 1:
        raise ValueError(f"Layer {layer!r} is not a conv layer on the {channels}-channel image "
                         f"({type(module).__name__}); filters can be shown as images only for the first conv layer.")
    w = module.weight.detach().float().cpu()
    scale = w.abs().flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return ((w / (2 * scale) + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
