"""Activation maximization (Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015; Olah et al. 2017):
synthesize the images that make units of a network fire, a whole layer in one batched optimization.

    from cnnvis_widgets.optvis import activation_maximization, channel, deep_dream
    am = activation_maximization(model, "conv5", units=range(64))                 # Lucid's recipe
    am = activation_maximization(model, "fc8", objective="logit", preset="simonyan")
    am = activation_maximization(model, "conv5", objective=lambda u: channel("conv5", u) - 0.5 * deep_dream("conv4"))
    am = activation_maximization(model, None, objective="logit", units=[1, 2], preset="maco")  # Fel et al. 2023
    fa = feature_accentuation(model, photo, "conv5", 3)                                      # Hamblin et al. 2024
"""

from .engine import activation_maximization, working_copy
from .accentuation import feature_accentuation
from .maco import MacoImage, natural_spectrum
from .result import AMResult
from .objectives import Objective, channel, class_logit, deep_dream, direction, diversity, neuron
from .parameterizations import FourierImage, PixelImage
from .presets import PRESETS, AMConfig
from .regularizers import alpha_norm, l2, total_variation
from .transforms import CropTransforms, StandardTransforms

__all__ = [
    "AMConfig",
    "AMResult",
    "CropTransforms",
    "MacoImage",
    "FourierImage",
    "Objective",
    "PRESETS",
    "PixelImage",
    "StandardTransforms",
    "activation_maximization",
    "alpha_norm",
    "channel",
    "class_logit",
    "deep_dream",
    "direction",
    "diversity",
    "feature_accentuation",
    "l2",
    "natural_spectrum",
    "neuron",
    "total_variation",
    "working_copy",
]
