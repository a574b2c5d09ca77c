"""Train MiniAlexNet on ShapeWorld's scene task, deterministically, on the CPU in minutes.

``train_mini_alexnet()`` regenerates the weights that ship in ``cnnvis_widgets/zoo/weights``; the notebooks use
it to train variants (conv1 stride, batch norm, no dropout, other seeds).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import nn

from ..datasets.shapeworld import SCENES, render_batch
from .mini_alexnet import CHECKPOINT_EPOCHS, MEAN, STD, mini_alexnet


@dataclass
class TrainingConfig:
    """Everything that determines the trained weights (with the torch version and thread count)."""

    seed: int = 0
    world_seed: int = 0
    train_images: int = 16000
    val_images: int = 1000
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    threads: int = 2
    pixel_noise: float = 0.0  # std of Gaussian noise added to training pixels in [0, 1]
    checkpoint_epochs: tuple[int, ...] = CHECKPOINT_EPOCHS
    model: dict = field(default_factory=dict)  # keyword arguments of mini_alexnet()


@dataclass
class TrainingLog:
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def shapeworld_tensors(world_seed: int, count: int, split: str, size: int = 64):
    """ShapeWorld images as a normalized float tensor [N, 3, size, size] and scene targets [N]."""
    images, targets = render_batch(world_seed, 0, count, size, split)
    x = torch.from_numpy(images).float().div_(255)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.from_numpy(targets)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on normalized images ``x``; restores the module's train/eval mode."""
    was_training = net.training
    net.eval()
    try:
        correct = sum((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum() for i in range(0, len(x), batch_size))
    finally:
        net.train(was_training)
    return float(correct) / len(x)


def train_mini_alexnet(out_dir: str | Path | None = None, config: TrainingConfig | None = None,
                       on_epoch: Callable[[int, nn.Module, TrainingLog], None] | None = None,
                       progress: bool = True) -> tuple[nn.Module, TrainingLog]:
    """Train MiniAlexNet with SGD (momentum, weight decay, cosine schedule) and return it with its log.

    With ``out_dir``, writes ``mini_alexnet.safetensors`` (float32), the epoch checkpoints
    ``mini_alexnet_epochNN.safetensors`` (float16, to keep the package small) and ``mini_alexnet.json``
    (config and log). The same config, torch version and thread count give the same bytes.
    """
    from tqdm.auto import tqdm

    config = config or TrainingConfig()
    torch.manual_seed(config.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        x_train, y_train = shapeworld_tensors(config.world_seed, config.train_images, "train")
        x_val, y_val = shapeworld_tensors(config.world_seed, config.val_images, "val")
        net = mini_alexnet(**config.model)
        opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        steps_per_epoch = len(x_train) // config.batch_size
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch)
        shuffle = torch.Generator().manual_seed(config.seed)
        noise = torch.Generator().manual_seed(config.seed + 1)
        noise_scale = config.pixel_noise / torch.tensor(STD).view(1, 3, 1, 1)
        log = TrainingLog()
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()

        def end_of_epoch(epoch: int, loss: float):
            log.epoch.append(epoch)
            log.train_loss.append(loss)
            log.val_accuracy.append(accuracy(net, x_val, y_val))
            if out is not None and epoch in config.checkpoint_epochs:
                save_file({k: v.half().contiguous() for k, v in net.state_dict().items()},
                          out / f"mini_alexnet_epoch{epoch:02d}.safetensors", metadata={"epoch": str(epoch)})
            if on_epoch is not None:
                on_epoch(epoch, net, log)

        end_of_epoch(0, float("nan"))
        for epoch in tqdm(range(1, config.epochs + 1), desc="training MiniAlexNet", disable=not progress):
            net.train()
            order = torch.randperm(len(x_train), generator=shuffle)
            total = torch.zeros(())
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size:(b + 1) * config.batch_size]
                x = x_train[idx]
                if config.pixel_noise:
                    x = x + noise_scale * torch.randn(x.shape, generator=noise)
                loss = nn.functional.cross_entropy(net(x), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.detach()
            end_of_epoch(epoch, float(total) / steps_per_epoch)
        log.seconds = time.perf_counter() - start
        if out is not None:
            state = {k: v.contiguous() for k, v in net.state_dict().items()}
            save_file(state, out / "mini_alexnet.safetensors", metadata={"classes": json.dumps(list(SCENES))})
            (out / "mini_alexnet.json").write_text(json.dumps(
                {"config": asdict(config), "log": asdict(log), "torch": torch.__version__}, indent=1) + "\n")
        net.eval()
        return net, log
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def held_out_accuracy(net: nn.Module, world_seed: int = 0, count: int = 1000) -> float:
    """Accuracy on ShapeWorld's validation images (never used for training)."""
    x, y = shapeworld_tensors(world_seed, count, "val")
    return accuracy(net, x, y)


__all__ = ["TrainingConfig", "TrainingLog", "train_mini_alexnet", "held_out_accuracy", "accuracy", "shapeworld_tensors"]
