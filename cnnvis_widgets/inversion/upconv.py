"""UpconvNet decoders: images reconstructed from a layer's features by a network trained to invert it.

Dosovitskiy & Brox, "Inverting Visual Representations with Convolutional Networks" (CVPR 2016): with the
classifier frozen, train a decoder f on the training images to minimize the pixel loss
``sum_i ||x_i - f(Phi(x_i))||^2`` (§3; Adam, leaky ReLU with slope 0.2). The architectures follow their
§3 and supplementary Table, scaled to the classifier's input size (64 px for MiniAlexNet):

- **fc layers**: fully connected layers to a 4x4 map, then stride-2 up-convolutions (4x4 kernels, each
  followed by a 3x3 convolution) up to the classifier's input channels (3 for RGB, 1 for grayscale) at the
  input size;
- **conv layers**: a few 3x3 convolutions at the layer's resolution, then stride-2 up-convolutions back to
  the input size. The number of up-convolutions is ``round(log2(input / layer size))``; a layer whose size
  is not the input size over a power of two (MiniAlexNet's conv2 is 15x15) is first resized bilinearly to
  the nearest such size (16x16).

A decoder takes the layer's output **as is** (for MiniAlexNet, the pre-ReLU conv / linear output that
``run_until`` reads), standardized inside the decoder by per-channel statistics of the training features,
and ends with a **sigmoid**, so its images lie in (0, 1) and stay differentiable everywhere (DGN-AM,
Nguyen et al. 2016, optimizes the code through the decoder). ``code_low`` / ``code_high`` hold the observed
range of each feature (each channel of a conv layer) over the training images: DGN-AM clips its code to it.

Decoders for MiniAlexNet ship in ``cnnvis_widgets/zoo/weights/decoders`` (:func:`load_decoder`); regenerate
them with ``cnnvis train-decoders`` (:mod:`~cnnvis_widgets.inversion.shipped`), and print their held-out
errors with ``cnnvis decoder-errors``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..datasets.shapeworld import shapeworld_images
from ..model import Model, run_until
from ..zoo import DECODERS_DIR
from .perturbations import perturb
from .result import pixel_error

SHIPPED_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
LEAK = 0.2  # leaky ReLU slope (Dosovitskiy & Brox 2016, §3)


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(LEAK)


class UpconvDecoder(nn.Module):
    """A decoder from one layer's features to images (Dosovitskiy & Brox 2016); see the module docstring.

    Args:
        layer, model_name: the layer it inverts and the classifier's name (recorded in saved files).
        image_size: (H, W) of the images it produces (the classifier's input size).
        feature_shape: the layer's output shape per sample: (C, h, w) for a conv layer, (F,) for an fc one.
        width: channels of the first convolutions (conv) or of the 4x4 map (fc); halved at each
            up-convolution, never below ``min_width``.
        hidden: width of the hidden fully connected layers (fc decoders).
        convs: 3x3 convolutions before the up-convolutions (conv decoders).
        min_width: the fewest channels of an up-convolution's output (except the last, which has ``channels``).
        channels: channels of the images it produces (the classifier's input channels: 3 for RGB, 1 for
            grayscale).

    Buffers ``feature_mean`` / ``feature_std`` standardize the input; ``code_low`` / ``code_high`` are the
    observed min / max of each feature (per channel for conv layers) over the training images.
    """

    def __init__(self, layer: str, model_name: str, image_size: tuple[int, int], feature_shape: Sequence[int],
                 width: int = 64, hidden: int = 256, convs: int = 2, min_width: int = 16, channels: int = 3):
        super().__init__()
        self.layer = layer
        self.model_name = model_name
        self.channels = int(channels)
        self.image_size = tuple(int(s) for s in image_size)
        self.feature_shape = tuple(int(s) for s in feature_shape)
        self.kwargs = dict(width=int(width), hidden=int(hidden), convs=int(convs), min_width=int(min_width))
        if len(self.feature_shape) not in (1, 3):
            raise ValueError(f"An UpconvDecoder inverts a conv layer [C, h, w] or an fc layer [F]; layer {layer!r} "
                             f"has output shape {self.feature_shape}. Pick a conv or fc layer from model.layers.")
        channels = self.feature_shape[0]
        self.register_buffer("feature_mean", torch.zeros(channels))
        self.register_buffer("feature_std", torch.ones(channels))
        self.register_buffer("code_low", torch.zeros(channels))
        self.register_buffer("code_high", torch.zeros(channels))
        height, width_px = self.image_size
        if self.spatial:
            size = self.feature_shape[1]
            ups = max(round(math.log2(height / size)), 0)
            self.base_size = (height // 2 ** ups, width_px // 2 ** ups)
            layers: list[nn.Module] = []
            cin = channels
            for _ in range(convs):
                layers += [nn.Conv2d(cin, width, 3, padding=1), _lrelu()]
                cin = width
            self.body = nn.Sequential(*layers)
            self.head = None
        else:
            ups = max(round(math.log2(height / 4)), 0)
            self.base_size = (height // 2 ** ups, width_px // 2 ** ups)
            self.head = nn.Sequential(nn.Linear(channels, hidden), _lrelu(), nn.Linear(hidden, hidden), _lrelu(),
                                      nn.Linear(hidden, width * self.base_size[0] * self.base_size[1]), _lrelu())
            self.body = nn.Sequential()
            cin = width
        up: list[nn.Module] = []
        for i in range(ups):
            last = i == ups - 1
            cout = self.channels if last else max(cin // 2, min_width)
            up.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            if not last:
                up.append(_lrelu())
                if not self.spatial:
                    up += [nn.Conv2d(cout, cout, 3, padding=1), _lrelu()]
            cin = cout
        if ups == 0:  # a layer at the input resolution
            up.append(nn.Conv2d(cin, self.channels, 3, padding=1))
        self.up = nn.Sequential(*up)

    @property
    def spatial(self) -> bool:
        return len(self.feature_shape) == 3

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, model_name={self.model_name!r}, feature_shape={self.feature_shape}, " \
               f"image_size={self.image_size}, channels={self.channels}"

    def _check(self, features: torch.Tensor) -> None:
        if tuple(features.shape[1:]) != self.feature_shape:
            raise ValueError(
                f"This decoder inverts {self.model_name} {self.layer!r}, whose features are [N, "
                f"{', '.join(map(str, self.feature_shape))}]; got a tensor of shape {tuple(features.shape)}. Pass that "
                f"layer's output (run_until(model, images, {self.layer!r}, ...)), or load the decoder of the layer you "
                "have with load_decoder(model_name, layer).")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Features [N, *feature_shape] (the layer's output as is) → images [N, channels, H, W] in (0, 1)."""
        self._check(features)
        shape = (1, -1, 1, 1) if self.spatial else (1, -1)
        z = (features.to(self.feature_mean.dtype) - self.feature_mean.view(shape)) / self.feature_std.view(shape)
        if self.spatial:
            if tuple(z.shape[-2:]) != self.base_size:
                z = F.interpolate(z, size=self.base_size, mode="bilinear", align_corners=False)
            z = self.body(z)
        else:
            z = self.head(z).view(len(z), -1, *self.base_size)
        return torch.sigmoid(self.up(z))

    def reconstruct(self, model: Model, images, perturbation: str | None = None,
                    generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor:
        """Images (anything :class:`~cnnvis_widgets.images.ImageSource` accepts) → their reconstructions
        [N, C, H, W] from this decoder's layer of ``model``, optionally after a feature perturbation."""
        source = model.image_source(images)
        out = []
        with torch.no_grad():
            for _, batch in source.batches(batch_size):
                features = layer_features(model, batch, self.layer)
                features = perturb(features, perturbation, generator)
                out.append(self(features.to(self.feature_mean.device)).cpu())
        return torch.cat(out)

    # -- persistence --------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"kind": "UpconvDecoder", "layer": self.layer, "model_name": self.model_name,
                "image_size": list(self.image_size), "feature_shape": list(self.feature_shape),
                "channels": self.channels,
                "architecture": self.kwargs, "training": getattr(self, "training_log", {})}

    def save(self, path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
        """Write the weights (``dtype``: float32, or float16 for half the size) to a ``.safetensors`` file
        with the architecture, layer, sizes and training log as JSON metadata. The standardization
        statistics and the code range are always stored as float32. Written atomically."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffers = {name for name, _ in self.named_buffers()}
        state = {k: (v if k in buffers else v.to(dtype)).detach().cpu().contiguous() for k, v in self.state_dict().items()}
        _atomic(path, lambda tmp: save_file(state, str(tmp), metadata={"cnnvis": json.dumps(self.metadata())}))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "UpconvDecoder":
        """Read a decoder written by :meth:`save` (safetensors only: nothing is unpickled); float32 weights."""
        from safetensors import safe_open

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Decoder file {path} does not exist; check the path, or use load_decoder().")
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            meta = json.loads(header.get("cnnvis", "{}"))
            if meta.get("kind") != "UpconvDecoder":
                raise ValueError(f"{path} is not a saved UpconvDecoder (its metadata kind is {meta.get('kind')!r}).")
            state = {k: f.get_tensor(k).float() for k in f.keys()}
        decoder = cls(meta["layer"], meta["model_name"], meta["image_size"], meta["feature_shape"], **meta["architecture"],
                      channels=meta.get("channels", 3))
        decoder.load_state_dict(state)
        decoder.training_log = meta.get("training", {})
        return decoder.eval()


def _atomic(path: Path, write) -> None:
    """Call ``write(temp_path)`` then move the temp file onto ``path`` (no half-written file on a crash)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def layer_features(model: Model, images: torch.Tensor, layer: str) -> torch.Tensor:
    """``layer``'s output for ``images`` ([N, C, H, W] in [0, 1]) with the classifier frozen; a detached copy."""
    out: list[torch.Tensor] = []
    with model.inference(), torch.no_grad():
        run_until(model, images.to(model.device, model.dtype), layer, lambda t: out.append(t.detach().clone()))
    return out[0]


def _as_tensor(model: Model, dataset) -> torch.Tensor:
    """``dataset`` as one float tensor [N, C, H, W] at ``model``'s input size and channel count, on the CPU."""
    source = model.image_source(dataset)  # checks the channel count and the values
    if isinstance(dataset, torch.Tensor) and dataset.is_floating_point() and \
            tuple(dataset.shape[1:]) == tuple(model.input_size):
        return dataset.float().cpu()  # already the model's images: no copy
    return source.images(range(len(source)))


def _feature_stats(features: torch.Tensor, batch_size: int = 250):
    """Per channel (conv) or per feature (fc): mean, std, min and max over the samples (and positions)."""
    total = square = None
    low = high = None
    count = 0
    for start in range(0, len(features), batch_size):
        flat = features[start:start + batch_size].double().transpose(0, 1).flatten(1)  # [C, N * positions]
        total = flat.sum(1) if total is None else total + flat.sum(1)
        square = flat.pow(2).sum(1) if square is None else square + flat.pow(2).sum(1)
        low = flat.min(1).values if low is None else torch.minimum(low, flat.min(1).values)
        high = flat.max(1).values if high is None else torch.maximum(high, flat.max(1).values)
        count += flat.shape[1]
    mean = total / count
    std = (square / count - mean.pow(2)).clamp_min(0).sqrt()
    return mean.float(), std.clamp_min(1e-3 * float(std.max()) + 1e-8).float(), low.float(), high.float()


def _checkpoint_path(directory: Path, model: Model, layer: str) -> Path:
    return directory / f"{_slug(model.name)}_{layer}.checkpoint.safetensors"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def _save_checkpoint(path: Path, decoder: UpconvDecoder, optimizer: torch.optim.Optimizer, epoch: int,
                     settings: dict, log: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"decoder.{k}": v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    meta = {"epoch": epoch, "settings": settings, "log": log, "decoder": decoder.metadata()}
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={"cnnvis": json.dumps(meta)}))


def _load_checkpoint(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {})["cnnvis"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    decoder_state = {k.removeprefix("decoder."): v for k, v in tensors.items() if k.startswith("decoder.")}
    optimizer_state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, slot = key.split(".", 2)
            optimizer_state.setdefault(int(index), {})[slot] = value
    return meta, decoder_state, optimizer_state


def train_upconv(model: Model, layer: str, dataset=None, *, epochs: int = 20, batch_size: int = 64, lr: float = 1e-3,
                 directory: str | os.PathLike | None = None, resume: bool = True, seed: int = 0, progress: bool = True,
                 val_dataset=None, lr_decay: float = 1.0, architecture: dict | None = None,
                 comparator: str | None = None, comparator_weight: float = 1.0) -> UpconvDecoder:
    """Train a decoder for ``layer`` of the frozen ``model`` (Dosovitskiy & Brox 2016, §3).

    Loss: mean squared error of the pixels in [0, 1]; with ``comparator``, plus ``comparator_weight`` times
    the feature loss of Dosovitskiy & Brox, "Generating Images with Perceptual Similarity Metrics based on
    Deep Networks" (NIPS 2016): the squared distance between the comparator layer's features of the
    reconstruction and of the image, divided by the mean square of those features over the first 512
    training images (their adversarial term is left out). The comparator here is a layer of ``model`` itself (theirs
    was AlexNet, the kind of network whose fc6 they decoded for DGN-AM). Optimizer: Adam
    (``lr``, multiplied by ``lr_decay`` after every epoch). The layer's features of all training images are computed once and kept in memory
    (float32; 0.5 GB for 4000 images at MiniAlexNet's conv1).

    Args:
        model: the classifier (a :class:`~cnnvis_widgets.model.Model`); run frozen, in eval mode.
        layer: the layer to invert (any conv or fc layer of ``model.layers``).
        dataset: training images, anything :class:`~cnnvis_widgets.images.ImageSource` accepts, resized to the
            model's input size; default: ShapeWorld's train split (4000 images).
        epochs: total epochs (a resumed run trains only the missing ones).
        directory: where a checkpoint (weights, Adam state, log) is written atomically after every epoch.
        resume: continue from the checkpoint in ``directory`` when its settings match this call.
        seed: initialization and the order of the images; the same seed and thread count give the same
            weights, resumed or not (deterministic algorithms are switched on for the run).
        val_dataset: images for the held-out error logged after every epoch; default: the first 256 images
            of ShapeWorld's val split.
        architecture: keyword arguments of :class:`UpconvDecoder` (``width``, ``hidden``, ``convs``, ``min_width``).
        comparator: a layer of ``model`` whose features the reconstruction must also match (e.g. ``"conv5"``);
            ``None``: pixel loss only.
        comparator_weight: weight of the normalized feature loss against the pixel loss.

    Returns the decoder in eval mode; ``decoder.training_log`` holds per-epoch training loss, validation
    loss and pixel error (:func:`~cnnvis_widgets.inversion.result.pixel_error`) and the seconds spent.
    """
    from tqdm.auto import tqdm

    model.layer(layer)  # an unknown name fails here, listing the valid ones
    if comparator is not None:
        model.layer(comparator)
    size = tuple(model.input_size[1:])
    images = _as_tensor(model, shapeworld_images("train") if dataset is None else dataset)
    val_images = _as_tensor(model, shapeworld_images("val", 256) if val_dataset is None else val_dataset)
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        feature_shape = tuple(layer_features(model, images[:1], layer).shape[1:])
        decoder = UpconvDecoder(layer, model.name, size, feature_shape, **(architecture or {}), channels=model.channels)
        features = _all_features(model, images, layer)
        mean, std, low, high = _feature_stats(features)
        if comparator is not None:  # the feature loss's targets and normalizer (mean square on 512 images)
            targets = _all_features(model, images, comparator)
            comparator_scale = float(targets[:512].pow(2).mean().clamp_min(1e-12))
        with torch.no_grad():
            decoder.feature_mean.copy_(mean)
            decoder.feature_std.copy_(std)
            decoder.code_low.copy_(low)
            decoder.code_high.copy_(high)
        decoder.to(model.device)
        optimizer = torch.optim.Adam(decoder.parameters(), lr=lr)
        settings = {"layer": layer, "model": model.name, "images": len(images), "batch_size": batch_size, "lr": lr,
                    "lr_decay": lr_decay, "seed": seed, "architecture": decoder.kwargs}
        if comparator is not None:
            settings.update(comparator=comparator, comparator_weight=comparator_weight)
        log = {"epoch": [], "train_loss": [], "val_loss": [], "val_pixel_error": [], "seconds": 0.0}
        start_epoch = 0
        checkpoint = _checkpoint_path(Path(directory), model, layer) if directory is not None else None
        if checkpoint is not None and resume and checkpoint.exists():
            meta, decoder_state, optimizer_state = _load_checkpoint(checkpoint)
            if meta["settings"] != settings:
                warnings.warn(f"The checkpoint {checkpoint} was trained with other settings ({meta['settings']}); "
                              "training from scratch.", stacklevel=2)
            elif meta["epoch"] > epochs:
                warnings.warn(f"The checkpoint {checkpoint} has {meta['epoch']} epochs, more than the {epochs} asked "
                              "for; training from scratch.", stacklevel=2)
            else:
                decoder.load_state_dict(decoder_state)
                state = optimizer.state_dict()
                state["state"] = optimizer_state
                optimizer.load_state_dict(state)
                start_epoch, log = meta["epoch"], meta["log"]
        began = time.perf_counter() - log["seconds"]
        bar = tqdm(range(start_epoch, epochs), desc=f"UpconvNet {layer}", disable=not progress, initial=start_epoch,
                   total=epochs)
        for epoch in bar:
            decoder.train()
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_decay ** epoch
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
            total, batches = 0.0, 0
            for b in range(0, len(images) - batch_size + 1 if len(images) >= batch_size else 1, batch_size):
                index = order[b:b + batch_size]
                x = images[index].to(model.device)
                reconstruction = decoder(features[index].to(model.device))
                loss = F.mse_loss(reconstruction, x)
                if comparator is not None:
                    loss = loss + comparator_weight * _comparator_loss(
                        model, comparator, reconstruction, targets[index].to(model.device), comparator_scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                batches += 1
            val_loss, val_error = _evaluate(decoder, model, val_images)
            log["epoch"].append(epoch + 1)
            log["train_loss"].append(total / batches)
            log["val_loss"].append(val_loss)
            log["val_pixel_error"].append(val_error)
            log["seconds"] = time.perf_counter() - began
            bar.set_postfix(train=f"{total / batches:.4f}", val=f"{val_loss:.4f}")
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                _save_checkpoint(checkpoint, decoder, optimizer, epoch + 1, settings, log)
        decoder.training_log = {**log, "settings": settings, "torch": torch.__version__}
        return decoder.eval()
    finally:
        torch.use_deterministic_algorithms(previous_deterministic)


def _all_features(model: Model, images: torch.Tensor, layer: str, chunk: int = 250) -> torch.Tensor:
    """``layer``'s features of all ``images``, computed ``chunk`` images at a time, on the CPU."""
    return torch.cat([layer_features(model, images[i:i + chunk], layer).cpu() for i in range(0, len(images), chunk)])


def _comparator_loss(model: Model, layer: str, reconstruction: torch.Tensor, target: torch.Tensor,
                     scale: float) -> torch.Tensor:
    """Mean squared difference of ``layer``'s features of the reconstruction and ``target`` (the images'
    features), over ``scale``; differentiable in the reconstruction, the classifier frozen."""
    out: list[torch.Tensor] = []
    with model.inference():
        run_until(model, reconstruction, layer, lambda t: out.append(t.clone()))
    return F.mse_loss(out[0], target) / scale


@torch.no_grad()
def _evaluate(decoder: UpconvDecoder, model: Model, images: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    """Mean squared pixel error and mean :func:`pixel_error` of the decoder's reconstructions of ``images``."""
    was_training = decoder.training
    decoder.eval()
    squared, errors = 0.0, []
    try:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(model.device)
            y = decoder(layer_features(model, x, decoder.layer))
            squared += float(F.mse_loss(y, x, reduction="sum"))
            errors.append(pixel_error(y.cpu().numpy(), x.cpu().numpy()))
    finally:
        decoder.train(was_training)
    return squared / images.numel(), float(np.concatenate(errors).mean())


def available_decoders(model_name: str = "mini_alexnet") -> list[str]:
    """Layers of ``model_name`` with a shipped decoder."""
    prefix = f"{model_name}_"
    return sorted((p.stem.removeprefix(prefix) for p in DECODERS_DIR.glob(f"{prefix}*.safetensors")),
                  key=lambda name: (SHIPPED_LAYERS.index(name) if name in SHIPPED_LAYERS else len(SHIPPED_LAYERS), name))


def load_decoder(model_name: str, layer: str) -> UpconvDecoder:
    """A shipped decoder, e.g. ``load_decoder("mini_alexnet", "fc6")``."""
    path = DECODERS_DIR / f"{model_name}_{layer}.safetensors"
    if not path.exists():
        available = available_decoders(model_name)
        if available:
            hint = f"Shipped decoders for {model_name}: layers {', '.join(available)}."
        else:
            models = sorted({p.stem.rsplit("_", 1)[0] for p in DECODERS_DIR.glob("*.safetensors")})
            hint = f"No decoders ship for {model_name!r}; decoders ship for {', '.join(models) or 'no model'}."
        raise FileNotFoundError(f"No shipped UpconvNet decoder for {model_name} layer {layer!r}. {hint} Train one "
                                "with train_upconv(model, layer) (or `cnnvis train-decoders --layers ...`).")
    return UpconvDecoder.load(path)


def decoder_errors(model: Model, decoders: dict[str, UpconvDecoder], dataset,
                   perturbations: Sequence[str | None] = (None, "binarize", "dropout"),
                   seed: int = 0) -> dict[str, dict[str | None, float]]:
    """Mean pixel error ``||x - x0||^2 / ||x0 - mean(x0)||^2`` of each decoder's reconstructions of ``dataset``
    (anything ImageSource accepts), from clean and from perturbed features (Dosovitskiy & Brox 2016, §5.2).

    Dropout masks come from a generator seeded with ``seed`` afresh for every layer.
    Returns ``{layer: {perturbation: error}}`` (perturbation ``None`` = unperturbed).
    """
    images = _as_tensor(model, dataset)
    result: dict[str, dict[str | None, float]] = {}
    for layer, decoder in decoders.items():
        decoder.eval()
        result[layer] = {}
        for perturbation in perturbations:
            generator = torch.Generator(device=model.device).manual_seed(seed)
            reconstruction = decoder.reconstruct(model, images, perturbation, generator)
            result[layer][perturbation] = float(pixel_error(reconstruction.numpy(), images.numpy()).mean())
    return result


def errors_table(errors: dict[str, dict[str | None, float]]) -> str:
    """:func:`decoder_errors` as aligned text: one row per layer, one column per perturbation."""
    columns = list(next(iter(errors.values())).keys()) if errors else []
    rows = [["layer"] + ["none" if p is None else p for p in columns]]
    rows += [[layer] + [f"{errors[layer][p]:.4f}" for p in columns] for layer in errors]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


__all__ = ["SHIPPED_LAYERS", "UpconvDecoder", "available_decoders", "decoder_errors", "errors_table", "layer_features",
           "load_decoder", "train_upconv"]
