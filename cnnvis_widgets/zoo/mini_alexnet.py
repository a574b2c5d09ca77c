"""MiniAlexNet: an AlexNet/CaffeNet-shaped network for ShapeWorld's 64-pixel images.

Same stages and names as CaffeNet (Krizhevsky et al. 2012; Jia et al. 2014): conv1-relu1-pool1,
conv2-relu2-pool2, conv3-relu3, conv4-relu4, conv5-relu5-pool5, fc6-relu6-drop6, fc7-relu7-drop7, fc8,
with widths and kernels scaled to 64 px so that it trains on two CPU cores in minutes. Trained weights
and checkpoints from its training run ship in ``cnnvis_widgets/zoo/weights`` (see :mod:`cnnvis_widgets.zoo.mini_alexnet_training`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..datasets.shapeworld import SCENES

WEIGHTS_DIR = Path(__file__).parent / "weights"
INPUT_SIZE = (3, 64, 64)
# ImageNet statistics, as torchvision's models use, so the embedded model behaves like the real ones.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CHECKPOINT_EPOCHS = (0, 1, 2, 5, 10)


def mini_alexnet(num_classes: int = len(SCENES), conv1_kernel: int = 7, conv1_stride: int = 2,
                 batch_norm: bool = False, dropout: float = 0.5, widths=(32, 64, 96, 96, 64, 256)) -> nn.Sequential:
    """Build an untrained MiniAlexNet.

    Args:
        num_classes: outputs of fc8 (ShapeWorld's 32 scenes by default).
        conv1_kernel, conv1_stride: the first layer's geometry (AlexNet uses a large stride; ZFNet a
            smaller one, Zeiler & Fergus 2014 §4.1).
        batch_norm: insert BatchNorm after every conv (a "training condition" of Bau et al. 2017 §4).
        dropout: dropout probability after fc6 and fc7 (0 disables).
        widths: channels of conv1..conv5 and the width of fc6/fc7.
    """
    c1, c2, c3, c4, c5, fc = widths
    layers: list[tuple[str, nn.Module]] = []

    def conv(name: str, cin: int, cout: int, k: int, s: int = 1):
        layers.append((f"conv{name}", nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)))
        if batch_norm:
            layers.append((f"bn{name}", nn.BatchNorm2d(cout)))
        layers.append((f"relu{name}", nn.ReLU()))

    conv("1", 3, c1, conv1_kernel, conv1_stride)
    layers.append(("pool1", nn.MaxPool2d(3, 2)))
    conv("2", c1, c2, 5)
    layers.append(("pool2", nn.MaxPool2d(3, 2)))
    conv("3", c2, c3, 3)
    conv("4", c3, c4, 3)
    conv("5", c4, c5, 3)
    layers.append(("pool5", nn.MaxPool2d(3, 2)))
    with torch.no_grad():
        probe = nn.Sequential(OrderedDict(layers))(torch.zeros(1, *INPUT_SIZE))
    layers.append(("flatten", nn.Flatten()))
    layers.append(("fc6", nn.Linear(probe.numel(), fc)))
    layers.append(("relu6", nn.ReLU()))
    if dropout:
        layers.append(("drop6", nn.Dropout(dropout)))
    layers.append(("fc7", nn.Linear(fc, fc)))
    layers.append(("relu7", nn.ReLU()))
    if dropout:
        layers.append(("drop7", nn.Dropout(dropout)))
    layers.append(("fc8", nn.Linear(fc, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def weights_path(epoch: int | None = None) -> Path:
    """The shipped weights: the final model, or the checkpoint saved after ``epoch`` epochs."""
    name = "mini_alexnet.safetensors" if epoch is None else f"mini_alexnet_epoch{epoch:02d}.safetensors"
    path = WEIGHTS_DIR / name
    if not path.exists():
        available = sorted(p.name for p in WEIGHTS_DIR.glob("mini_alexnet*.safetensors"))
        raise FileNotFoundError(
            f"{path} does not exist. Shipped MiniAlexNet files: {available or 'none'}; "
            "regenerate them with `cnnvis train-mini-alexnet`."
        )
    return path
