"""Network inversion: images reconstructed from a layer's features.

- regularized pre-images (Mahendran & Vedaldi 2015, IJCV 2016): :mod:`.regularized`;
- UpconvNet decoders (Dosovitskiy & Brox 2016): :mod:`.upconv`;
- feature perturbations that keep the L2 norm (Dosovitskiy & Brox 2016): :mod:`.perturbations`.
"""

from .perturbations import PERTURBATIONS, binarize, dropout, perturb
from .result import InversionResult, pixel_error

__all__ = ["PERTURBATIONS", "InversionResult", "binarize", "dropout", "perturb", "pixel_error"]
