"""Named recipes for activation maximization, each following its source.

- ``"lucid"`` — Olah et al. 2017, "Feature Visualization" (Distill), as in Lucid's ``render_vis`` and
  Lucent: Fourier parameterization with decorrelated colour, ``standard_transforms``, Adam lr 0.05, 512
  steps.
- ``"yosinski"`` — Yosinski et al. 2015, "Understanding Neural Networks Through Deep Visualization"
  (deep-visualization-toolbox ``optimize_image.py``): pixel space, L2 decay 1e-4 each step, Gaussian blur
  (sigma 1) every 4 steps, small-norm pixel clipping, 1000 steps. The paper climbs the plain gradient
  with a hand-tuned step on 0-255 Caffe pixels; here Adam (lr 0.05) on pixels in [0, 1] gives a step that
  does not depend on the model's gradient scale. Their clipping percentiles were hyperparameters found by
  random search; 20 is a mid-range choice of ours.
- ``"dgn"`` — Nguyen et al. 2016, "Synthesizing the preferred inputs for neurons in neural networks via
  deep generator networks" (DGN-AM; Evolving-AI-Lab/synthesizing ``act_max.py``): optimize the code of a
  generator (an UpconvNet decoder of fc6, Dosovitskiy & Brox 2016) instead of pixels, with the gradient
  normalized by its mean magnitude, a step size decaying linearly from 8 to ~0 over 200 steps, the code
  decayed by 1% each step and clipped to the range the code takes on real images. No transforms.
- ``"simonyan"`` — Simonyan et al. 2014, "Deep Inside Convolutional Networks", Eq. 1: maximize the
  unnormalized score ``S_c(I) - lambda ||I||^2`` over pixels, nothing else (no transforms, no blur). The
  paper does not give lambda for its 0-255 scale; ours, 1e-3 on [0, 1] pixels centred on grey, is a
  choice of ours.

- ``"maco"`` — Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
  Constrained Optimization" (xplique ``maco``): only the Fourier phase is optimized, the magnitude is fixed
  to a natural-image spectrum (:mod:`.maco`); 6 random crops per image and step plus noise 0.08
  (:class:`~.transforms.CropTransforms`); NAdam lr 1.0, 256 steps. xplique's crops shrink from 50% to 5% of a
  512 px image seen at 224 px; here the image defaults to the model's input size, so the crops shrink from
  100% to 40% of it (a choice of ours: smaller crops of an image no larger than the input only magnify it).
  Pass ``image_size=2 * input`` and ``transforms=CropTransforms(box=(0.5, 0.05))`` for xplique's setting.
- ``"accentuation"`` — Hamblin et al. 2024, "Feature Accentuation: Revealing 'What' Features Respond to in
  Natural Images" (Horama ``accentuation``): needs ``init=`` (the seed photo); Fourier parameterization
  started at the photo, spectrum decay 1.5, crops and noise as in Horama (6 crops of 25-30% there; 60-80%
  of an image of the model's size here), NAdam, and an L2 penalty ``anchor * mean((x - x_seed)^2)`` that
  keeps the image close to the seed (Horama: weight 1 on its (-2.5, 2.5) value range, i.e. 25 on [0, 1]).
  :func:`~.accentuation.feature_accentuation` wraps it.

Any field of :class:`AMConfig` can be overridden: ``activation_maximization(..., preset="lucid", lr=0.02)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .transforms import CropTransforms, StandardTransforms


@dataclass(frozen=True)
class AMConfig:
    """Everything an activation-maximization run does besides choosing the objective.

    Attributes:
        param: ``"fourier"``, ``"pixel"`` or ``"generator"`` (see :mod:`.parameterizations`).
        decorrelate: Lucid's colour decorrelation.
        sigmoid: squash to [0, 1] with a sigmoid (else a straight-through clamp).
        sd: initial standard deviation of the parameter (Lucid: 0.01).
        decay_power: the Fourier spectrum's ``1 / f^decay_power`` scaling.
        transforms: a :class:`~.transforms.StandardTransforms` or ``None`` (none); for images under 128 px
            its pad and jitter shrink in proportion (:meth:`~.transforms.StandardTransforms.for_size`).
        lr: Adam's learning rate; with ``param="generator"``, the normalized-gradient step size.
        lr_end: with ``param="generator"``, the step size reached at the last step (linear decay).
        steps: optimization steps.
        l2, tv: weights of the L2 (Simonyan) and total-variation (Mahendran & Vedaldi) penalties.
        decay: Yosinski's multiplicative L2 decay of the parameter, each step.
        blur_every, blur_sigma: Gaussian blur of a pixel parameter every ``blur_every`` steps (0: never).
        clip_percentile: Yosinski's small-norm pixel clipping percentile (0: off).
        grad_clip: cap on each image's gradient L2 norm (``None``: off).
        redirect_relu_steps: use Lucid's redirected ReLU gradient for this many first steps (0: never).
        optimizer: ``"adam"`` or ``"nadam"`` (MACO, feature accentuation).
        anchor: weight of Hamblin et al.'s penalty ``mean((x - x_seed)^2)`` (pixels in [0, 1]) that keeps each
            image close to its ``init`` image (0: off; needs ``init=``).
    """

    param: str = "fourier"
    decorrelate: bool = True
    sigmoid: bool = True
    sd: float = 0.01
    decay_power: float = 1.0
    transforms: StandardTransforms | CropTransforms | None = StandardTransforms()
    lr: float = 0.05
    lr_end: float | None = None
    steps: int = 512
    l2: float = 0.0
    tv: float = 0.0
    decay: float = 0.0
    blur_every: int = 0
    blur_sigma: float = 1.0
    clip_percentile: float = 0.0
    grad_clip: float | None = None
    redirect_relu_steps: int = 0
    optimizer: str = "adam"
    anchor: float = 0.0


PRESETS: dict[str, AMConfig] = {
    "lucid": AMConfig(redirect_relu_steps=16),
    "yosinski": AMConfig(param="pixel", decorrelate=False, transforms=None, steps=1000, decay=1e-4,
                         blur_every=4, blur_sigma=1.0, clip_percentile=20.0),
    "simonyan": AMConfig(param="pixel", decorrelate=False, transforms=None, steps=512, l2=1e-3),
    "dgn": AMConfig(param="generator", decorrelate=False, sd=1.0, transforms=None, lr=8.0, lr_end=1e-10,
                    steps=200, decay=0.01),
    "maco": AMConfig(param="maco", sd=1.0, transforms=CropTransforms(crops=6, box=(1.0, 0.4)), lr=1.0,
                     optimizer="nadam", steps=256),
    "accentuation": AMConfig(param="fourier", decay_power=1.5, transforms=CropTransforms(crops=6, box=(0.8, 0.6),
                                                                                          noise=0.05),
                             lr=0.05, optimizer="nadam", steps=256, anchor=25.0),
}


def get_preset(preset: str | AMConfig, **overrides) -> AMConfig:
    """The named preset (or a given :class:`AMConfig`) with ``overrides`` applied."""
    if isinstance(preset, AMConfig):
        config = preset
    elif preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise ValueError(f"Unknown preset {preset!r}: use one of {', '.join(map(repr, PRESETS))}, or an AMConfig.")
    fields = {f.name for f in dataclasses.fields(AMConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"Unknown option(s) {', '.join(unknown)}; activation_maximization accepts these preset "
                        f"overrides: {', '.join(sorted(fields))}.")
    if overrides.get("transforms") is True:
        overrides["transforms"] = StandardTransforms()
    elif overrides.get("transforms") is False:
        overrides["transforms"] = None
    config = dataclasses.replace(config, **overrides)
    if config.optimizer not in ("adam", "nadam"):
        raise ValueError(f"optimizer={config.optimizer!r}: use 'adam' or 'nadam'.")
    if (config.blur_every or config.clip_percentile) and config.param != "pixel":
        raise ValueError("blur_every and clip_percentile act on pixels; use param='pixel', or set them to 0.")
    return config
