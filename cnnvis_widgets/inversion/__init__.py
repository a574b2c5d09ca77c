"""Network inversion: images reconstructed from a layer's features.

- regularized pre-images (Mahendran & Vedaldi 2015, IJCV 2016): :mod:`.regularized`;
- UpconvNet decoders (Dosovitskiy & Brox 2016): :mod:`.upconv`;
- feature perturbations that keep the L2 norm (Dosovitskiy & Brox 2016): :mod:`.perturbations`;
- the DGN-AM generator (a decoder trained with a feature loss): :mod:`.generator`;
- regenerating the decoders that ship for MiniAlexNet: :mod:`.shipped`.
"""

from .generator import load_generator, train_shipped_generator
from .reconstruct import METHODS, invert
from .perturbations import PERTURBATIONS, binarize, dropout, perturb
from .regularized import RegularizedConfig, invert_regularized
from .result import InversionResult, pixel_error
from .upconv import UpconvDecoder, available_decoders, decoder_errors, load_decoder, train_upconv

__all__ = ["METHODS", "PERTURBATIONS", "InversionResult", "RegularizedConfig", "UpconvDecoder", "available_decoders",
           "binarize", "decoder_errors", "dropout", "invert", "invert_regularized", "load_decoder", "load_generator",
           "perturb", "pixel_error", "train_shipped_generator", "train_upconv"]
