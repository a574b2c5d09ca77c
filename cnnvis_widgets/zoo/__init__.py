"""The embedded model zoo: MiniAlexNet, its deterministic training on ShapeWorld, and the shipped weights.

``weights/`` holds MiniAlexNet's trained weights and training checkpoints, the UpconvNet decoders of its
layers (``weights/decoders``) and its DGN-AM generator (``weights/generators``), all as safetensors.
The architecture itself is ``cnnvis_widgets.zoo.mini_alexnet.mini_alexnet()`` (the submodule keeps its
name here; ``cv.load_model("mini_alexnet")`` is the usual way in).
"""

from .mini_alexnet import CHECKPOINT_EPOCHS, INPUT_SIZE, MEAN, STD, WEIGHTS_DIR, weights_path
from .mini_alexnet_training import TrainingConfig, TrainingLog, held_out_accuracy, train_mini_alexnet

DECODERS_DIR = WEIGHTS_DIR / "decoders"
GENERATORS_DIR = WEIGHTS_DIR / "generators"

__all__ = ["CHECKPOINT_EPOCHS", "DECODERS_DIR", "GENERATORS_DIR", "INPUT_SIZE", "MEAN", "STD", "TrainingConfig",
           "TrainingLog", "WEIGHTS_DIR", "held_out_accuracy", "train_mini_alexnet", "weights_path"]
