"""Feature accentuation (Hamblin et al. 2024, "Feature Accentuation: Revealing 'What' Features Respond to in
Natural Images"; reference code: serre-lab/Horama ``feature_accentuation.py``).

Activation maximization seeded from a real photo that stays close to it, to show *where* and *what* in the
photo drives a unit: the image is parameterized in the seed's Fourier space (decorrelated colour, spectrum
decay 1.5, started exactly at the seed), the unit is maximized over random crops with noise, and an L2
penalty ``anchor * mean((x - x_seed)^2)`` keeps the result near the seed. The change ``x - x_seed`` and the
transparency map (the summed ``|d objective / d image|``) say what the unit wants more of, and where.

Horama applies the penalty in pixel space, as here; the paper also discusses a penalty in a layer's feature
space, which is not implemented.
"""

from __future__ import annotations

import numpy as np

from .engine import activation_maximization
from .result import AMResult


def feature_accentuation(model, image, layer: str, unit, objective="channel", anchor: float | None = None,
                         steps: int | None = None, seed: int = 0, image_size=None, progress: bool = False,
                         **overrides) -> AMResult:
    """Accentuate ``unit`` of ``layer`` in ``image`` (Hamblin et al. 2024): the ``"accentuation"`` preset of
    :func:`~.engine.activation_maximization` with ``init=image``.

    Args:
        model: a :class:`~cnnvis_widgets.Model` (never modified).
        image: the seed photo(s): one for every unit, or one per unit, in any form ``init=`` takes.
        layer, unit: the unit to accentuate (an int or a list of ints, batched).
        objective: as in :func:`~.engine.activation_maximization` (``"channel"``, ``"neuron"``, ``"logit"``...).
        anchor: the weight of the L2 penalty to the seed (default the preset's, 25 on [0, 1] pixels, Horama's
            weight 1 on its (-2.5, 2.5) range). Larger stays closer to the photo.
        steps, seed, image_size, progress, overrides: as in :func:`~.engine.activation_maximization`.

    Returns:
        an :class:`~.result.AMResult`; ``images`` are the accentuations and ``transparency`` where the
        optimization pushed; compare with the seed for the change.
    """
    if image is None:
        raise ValueError("feature_accentuation needs a seed image: a photo (PIL image, array, tensor or path).")
    if anchor is not None:
        overrides["anchor"] = float(anchor)
    units = np.atleast_1d(np.asarray(unit))
    return activation_maximization(model, layer, units=units, objective=objective, preset="accentuation",
                                   steps=steps, seed=seed, image_size=image_size, progress=progress, init=image,
                                   **overrides)


__all__ = ["feature_accentuation"]
