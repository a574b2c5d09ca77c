"""The activation-maximization engine: a whole layer in one batched optimization.

Erhan et al. 2009, Simonyan et al. 2014, Yosinski et al. 2015, Olah et al. 2017 ("Feature
Visualization"): synthesize the input that maximizes a unit. Every unit (or every one of its
``n_per_unit`` images) is one image of a single batch; the loss is ``-objective.sum()`` with a per-image
objective, every transform is drawn per image from a generator seeded by (seed, unit, index), and Adam is
elementwise, so an image's result does not depend on which other units share its batch.

The optimization runs on a deep copy of the user's module with every ``inplace`` flag off, so pre-ReLU
targets of torchvision models are reachable (an in-place ReLU would otherwise overwrite the captured
conv output) and the user's module is never touched. The loop makes no host synchronization: the
objective history and snapshots stay on the device and are copied once at the end.
"""

from __future__ import annotations

import copy
import threading
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..distributed.group import current as current_group
from ..distributed.merge import gather_objects
from ..model import Model, feature_layer
from ..progress import CallbackBar
from . import regularizers as reg
from .arguments import check_units, init_images
from .caching import am_cache_slot, keep_chunks, kept_chunks
from .objectives import IMAGE, OUTPUT, as_objective, diversity as diversity_objective
from .maco import MacoImage
from .parameterizations import FourierImage, GeneratorImage, PixelImage
from .presets import AMConfig, get_preset
from .result import AMResult
from .transforms import resize


class _Stop(Exception):
    pass


def make_image(kind: str, seeds: Sequence[int], size: tuple[int, int], device=None, **kwargs) -> nn.Module:
    """Build a parameterization by name: ``"fourier"``, ``"pixel"``, ``"maco"`` (:class:`~.maco.MacoImage`)
    or ``"generator"`` (needs ``generator=``)."""
    kinds = {"fourier": FourierImage, "pixel": PixelImage, "generator": GeneratorImage, "maco": MacoImage}
    if kind not in kinds:
        raise ValueError(f"Unknown parameterization {kind!r}: use 'fourier', 'pixel', 'maco' or 'generator'.")
    if kind != "generator":
        kwargs.pop("generator", None)
    return kinds[kind](seeds, size, device=device, **kwargs)


def working_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode, parameters frozen, every ``inplace`` flag set to False."""
    net = copy.deepcopy(module)
    for m in net.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
        m._forward_hooks.clear()  # hooks copied from the user's module stay theirs
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class _Capture:
    """Forward hooks on a working copy that store the named layers' outputs; always removed on exit.

    When the model's final output is not needed, the forward pass stops after the last needed layer.
    """

    def __init__(self, net: nn.Module, layers: Iterable[str]):
        self.net = net
        self.layers = [name for name in dict.fromkeys(layers) if name not in (OUTPUT, IMAGE)]
        self.need_output = OUTPUT in layers
        self.acts: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self):
        modules = dict(self.net.named_modules())
        for name in self.layers:
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        while self._handles:
            self._handles.pop().remove()

    def _hook(self, name: str):
        def hook(module, inputs, output):
            self.acts[name] = output
            if not self.need_output and len(self.acts) == len(self.layers):
                raise _Stop

        return hook

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.acts = {}
        try:
            out = self.net(x)
            if self.need_output:
                self.acts[OUTPUT] = out
        except _Stop:
            pass
        missing = [name for name in self.layers if name not in self.acts]
        if missing:
            raise RuntimeError(f"Layer(s) {missing} did not run in the forward pass; pick layers from "
                               "model.layers that the module's forward calls.")
        return self.acts


def _normalizer(model: Model, device, dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.normalize`` with its constants made once on the device (no host copies in the loop)."""
    if type(model).normalize is not Model.normalize:
        return lambda x: model.normalize(x.to(dtype))
    if model.mean is None:
        return lambda x: x.to(dtype)
    mean = torch.tensor(model.mean, device=device, dtype=dtype).view(1, -1, 1, 1)
    std = torch.tensor(model.std, device=device, dtype=dtype).view(1, -1, 1, 1)
    return lambda x: (x.to(dtype) - mean) / std


def image_seeds(seed: int, units: Sequence[int], n: int) -> tuple[list[int], list[int]]:
    """Per-image (init seed, transform seed), from (seed, unit, index within the unit) only."""
    init, trans = [], []
    for u in units:
        for k in range(n):
            a, b = np.random.SeedSequence([seed, int(u), k]).generate_state(2)
            init.append(int(a))
            trans.append(int(b))
    return init, trans


def free_memory(device: torch.device) -> int:
    """Bytes free for tensors: the GPU's free memory, or the host's available memory (Linux)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 8 * 2**30


def auto_batch_size(net: nn.Module, normalize, in_size, device, budget: float = 0.5, overhead: float = 4.0,
                    channels: int = 3) -> int:
    """Images per optimization batch that fit in ``budget`` of the free memory.

    One image's cost is estimated from a forward pass: the bytes of every module output (kept for the
    backward pass), times ``overhead`` for gradients, the transformed copies and the allocator.
    """
    sizes = []

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(normalize(torch.full((1, channels, *in_size), 0.5, device=device)))
    finally:
        for h in handles:
            h.remove()
    per_image = overhead * (sum(sizes) + channels * in_size[0] * in_size[1] * 4 * 4)
    return max(1, int(budget * free_memory(device) // per_image))


def activation_maximization(model: Model, layer: str | None, units=None, objective="channel", preset="lucid",
                            steps: int | None = None, n_per_unit: int = 1, diversity: float = 0.0, seed: int = 0,
                            image_size: int | tuple[int, int] | None = None, batch_size: int | None = None,
                            snapshot_steps: Iterable[int] = (), progress: bool = True,
                            on_snapshot: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                            stop: threading.Event | None = None, generator: nn.Module | None = None,
                            init=None, devices=None, timeout: float = 300.0, cache=None, **overrides) -> AMResult:
    """Synthesize, for every unit, the image that maximizes it.

    Images have the model's channel count (``model.channels``): grayscale for a one-channel model, RGB for
    three. Lucid's colour decorrelation (the ``"lucid"`` preset's Fourier images) needs RGB; with any other
    count every channel is optimized on its own (see :mod:`.parameterizations`).

    Args:
        model: a :class:`~cnnvis_widgets.Model`; its module is never modified.
        layer: the target layer's dotted name (``None`` with ``objective="logit"``: the model's output).
        units: unit (channel / class) indices; default: every unit of the layer.
        objective: ``"channel"`` (spatial mean), ``"neuron"`` (centre position), ``"logit"`` / ``"class"``
            (unnormalized class score), or a callable ``fn(units) -> Objective`` given the per-image unit
            tensor [B], e.g. ``lambda u: channel("conv5", u) - 0.5 * deep_dream("conv4")``.
        preset: ``"lucid"``, ``"yosinski"``, ``"simonyan"`` (see :mod:`.presets`) or an ``AMConfig``.
        steps: optimization steps (default: the preset's).
        n_per_unit: images per unit (adjacent in the batch).
        diversity: weight of Olah et al.'s diversity term among a unit's images, on ``layer``. It is weighed
            against the unit's own activation: a weight that diversifies a strong unit can make a weak unit's
            images collapse (measured on MiniAlexNet conv5: weight 2 keeps 98% on unit 41, which reaches 5.6
            alone, and sends unit 3, which reaches 1.3, below zero), so scale it to the unit.
        seed: images depend only on (seed, unit, index within the unit).
        image_size: side (or (h, w)) of the optimized image; default the model's input size. The model
            always sees its input size (the image is resized after the transforms).
        batch_size: images per optimization batch (whole units); default: as many as half the free
            memory holds (:func:`auto_batch_size`), halved again on ``torch.OutOfMemoryError``.
        snapshot_steps: steps (0..steps) at which to keep the images.
        progress: show a progress bar, or a callable receiving the fraction done.
        on_snapshot: called as ``on_snapshot(step, images, history)`` at every snapshot step with the
            batch's images so far (numpy, [B, C, H, W]) and its objective history ([step, B]); a live view
            uses it. Only snapshot steps copy to the host.
        stop: an event; once set, the optimization ends after the current step and returns what it has
            (``history`` then holds the steps that ran).
        generator: for ``param="generator"`` (the ``"dgn"`` preset): the image generator whose code is
            optimized, e.g. ``cv.inversion.load_decoder("mini_alexnet", "fc6")`` or one from
            ``cv.train_upconv``; default for MiniAlexNet: its shipped generator
            (:func:`~cnnvis_widgets.inversion.generator.load_generator`, an fc6 decoder trained with an
            fc7 feature loss).
        init: start from images instead of noise, as DeepDream starts from a photo (Mordvintsev et al.
            2015) and Nguyen et al. 2016 ("Multifaceted feature visualization") from mean images: one image
            for all, one per unit, or one per optimized image (``len(units) * n_per_unit``, a unit's images
            adjacent), in any form :class:`~cnnvis_widgets.images.ImageSource` reads (tensors, arrays, PIL
            images, paths), in [0, 1], read with the model's channels and resized to ``image_size``. Pixel and
            Fourier parameterizations only.
        devices: spread the units over these devices, one worker process each (``["cuda:0", "cuda:1"]``,
            ``"all"`` or ``["cpu", "cpu"]``), and gather the images. Under ``torchrun`` leave it None
            (:func:`cnnvis_widgets.distributed.join`): each rank takes its block of the units' batches and every
            rank ends with all the images. Given the same ``batch_size``, every unit is optimized in the same batch
            from the same seed as in one process, so ``units`` and the arithmetic are one process's; images,
            activations, transparency and history are then the same bits only where the workers round as that
            process does (the same number of CPU threads, or the same GPU model and deterministic kernels).
            Otherwise they differ by rounding, which Adam's normalized steps can make visible.
        timeout: with ``devices``, the longest wait: seconds a worker may go without reporting, while starting
            or working, before the job ends with an error naming it.
        cache: look the call up in the result cache (:mod:`cnnvis_widgets.cache`) and store what it computes:
            None (the configured cache), True, False, or a folder. Live runs (``on_snapshot`` or ``stop``) and
            callable objectives or ``AMConfig`` presets are not cached.
        overrides: fields of :class:`~.presets.AMConfig`, e.g. ``lr=0.02``, ``transforms=False``, ``tv=1e-2``.
    """
    snapshot_steps = tuple(snapshot_steps)
    place = None
    if on_snapshot is None and stop is None:
        place = am_cache_slot(model, layer, units, objective, preset, steps, n_per_unit, diversity, seed, image_size,
                            batch_size, snapshot_steps, generator, init, overrides, cache)
        hit = place.load(AMResult) if place is not None else None
        if hit is not None:
            return hit
    if devices is not None:
        if on_snapshot is not None or stop is not None:
            raise ValueError("on_snapshot= and stop= act in this process; with devices= the work runs in worker "
                             "processes, so leave them out (or run without devices=).")
        from ..distributed.launch import spread

        result = spread(activation_maximization, devices, dict(
            model=model, layer=layer, units=units, objective=objective, preset=preset, steps=steps,
            n_per_unit=n_per_unit, diversity=diversity, seed=seed, image_size=image_size, batch_size=batch_size,
            snapshot_steps=snapshot_steps, generator=generator, init=init, cache=False, **overrides), timeout,
            progress)
    else:
        result = _synthesize(model, layer, units, objective, preset, steps, n_per_unit, diversity, seed, image_size,
                             batch_size, snapshot_steps, progress, on_snapshot, stop, generator, init, overrides,
                             place)
    if place is not None:
        place.save(result)
    return result


def _synthesize(model, layer, units, objective, preset, steps, n_per_unit, diversity, seed, image_size, batch_size,
                snapshot_steps, progress, on_snapshot, stop, generator, init, overrides, place=None) -> AMResult:
    config = get_preset(preset, **overrides)
    if config.param == "generator" and generator is None:
        if not getattr(model, "name", "").startswith("MiniAlexNet"):
            raise ValueError("The 'dgn' preset (param='generator') needs generator=: a decoder from "
                             "cv.train_upconv(model, 'fc6', dataset, comparator='fc7'), or any module mapping "
                             "codes to images.")
        from ..inversion.generator import load_generator

        generator = load_generator("mini_alexnet")
    steps = int(config.steps if steps is None else steps)
    if steps < 0:
        raise ValueError("steps must be >= 0.")
    if n_per_unit < 1:
        raise ValueError("n_per_unit must be >= 1.")
    if diversity and n_per_unit < 2:
        raise ValueError("diversity needs several images per unit: pass n_per_unit >= 2.")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer.")
    snapshot_steps = sorted({int(s) for s in snapshot_steps})
    if any(s < 0 or s > steps for s in snapshot_steps):
        raise ValueError(f"snapshot_steps must lie in 0..{steps}, got {snapshot_steps}.")
    in_size = tuple(model.input_size[1:])
    if image_size is None:
        size = in_size
    else:
        size = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(s) for s in image_size)

    is_logit = isinstance(objective, str) and objective in ("logit", "class", "class_logit")
    if layer is not None and isinstance(objective, str):  # channel, neuron or logit: units of a map or vector
        feature_layer(model, layer, "activation_maximization")  # a wrong name lists the valid ones
    elif layer is not None:
        model.layer(layer)  # a wrong name raises LayerNotFoundError listing the valid ones
    elif not (is_logit or callable(objective)):
        raise ValueError(f"objective={objective!r} needs a layer; pass one of: {', '.join(model.layers.names)}.")

    device, dtype = model.device, model.dtype
    net = working_copy(model.module)
    normalize = _normalizer(model, device, dtype)
    target_key = OUTPUT if layer is None else layer
    with _Capture(net, [target_key]) as probe, torch.no_grad():
        shape = probe(normalize(torch.full((1, model.channels, *in_size), 0.5, device=device)))[target_key].shape
    what = f"layer {layer!r}" if layer is not None else "the model's output"
    units = check_units(units, shape[1], what)
    starts = init_images(init, len(units), n_per_unit, size, model.channels, model.fit) if init is not None else None

    if batch_size is None:
        per_batch = max(1, min(len(units), auto_batch_size(net, normalize, in_size, device,
                                                           channels=model.channels) // n_per_unit))
    else:
        per_batch = max(1, int(batch_size) // n_per_unit)
    group = current_group()
    if group.distributed:  # every rank cuts the units on the same batch grid: the smallest batch any rank fits
        per_batch = min(gather_objects(per_batch, group))
        lo, hi = group.block(len(units), per_batch)
        all_units, units = units, units[lo:hi]
        if starts is not None:
            starts = starts[lo * n_per_unit:hi * n_per_unit]
    chunks = kept_chunks(place, units) if place is not None and not group.distributed else []
    start = sum(len(c["images"]) for c in chunks) // n_per_unit  # units an interrupted run finished
    if callable(progress):
        bar = CallbackBar(progress, len(units) * steps)
    else:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(units) * steps, disable=not (progress and group.leader), desc="activation maximization",
                   unit="unit-step")
    bar.update(start * steps)
    try:
        while start < len(units) and not (stop is not None and stop.is_set() and chunks):
            part = units[start:start + per_batch]
            try:
                part_init = None if starts is None else starts[start * n_per_unit:(start + len(part)) * n_per_unit]
                chunks.append(_optimize(model, net, normalize, layer, part, objective, config, steps, n_per_unit,
                                        diversity, seed, size, in_size, snapshot_steps, bar, on_snapshot, stop,
                                        generator, part_init))
            except torch.OutOfMemoryError:
                if per_batch == 1 or batch_size is not None:
                    raise
                per_batch = max(1, per_batch // 2)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            start += len(part)
    except BaseException:
        if place is not None and not group.distributed:
            keep_chunks(place, units, chunks)
        raise
    finally:
        bar.close()

    units = units[:sum(len(c["images"]) for c in chunks) // n_per_unit]  # fewer when stopped early
    if group.distributed:  # every rank's chunks, in rank order: the units in their order
        chunks = [c for part in gather_objects(chunks, group) for c in part]
        units = all_units

    def join(key):
        return np.concatenate([c[key] for c in chunks], axis=0)

    def per_unit(arr):
        return arr.reshape(len(units), n_per_unit, *arr.shape[1:]) if n_per_unit > 1 else arr

    return AMResult(
        layer=layer, units=units, images=per_unit(join("images")), activations=per_unit(join("activations")),
        history=np.concatenate([c["history"][:min(len(c["history"]) for c in chunks)] for c in chunks], axis=1),
        snapshots={s: per_unit(np.concatenate([c["snapshots"][s] for c in chunks])) for s in snapshot_steps
                   if all(s in c["snapshots"] for c in chunks)},
        config=config, seed=seed, transparency=per_unit(join("transparency")),
        labels=[str(model.classes[u]) for u in units] if layer is None and is_logit and model.classes else None)


def _optimize(model, net, normalize, layer, units, objective, config: AMConfig, steps, n, div_weight, seed, size,
              in_size, snapshot_steps, bar, on_snapshot=None, stop=None, generator=None, init=None) -> dict:
    """One batch of whole units: returns numpy images, activations, history, snapshots."""
    device = model.device
    image_units = torch.as_tensor(np.repeat(units, n), device=device)
    target = as_objective(objective, layer, image_units)
    transforms = config.transforms.for_size(min(size)) if config.transforms is not None else None
    k = getattr(transforms, "crops", 1)  # crops per image and step (MACO's CropTransforms), else 1
    crops_target = target if k == 1 else as_objective(objective, layer, image_units.repeat_interleave(k))
    if div_weight and k > 1:
        raise ValueError("diversity couples a unit's images, which several crops per step would mix up; use "
                         "transforms with crops=1, or diversity=0.")
    if config.anchor and init is None:
        raise ValueError("anchor (the 'accentuation' preset) keeps the image close to its init image: pass "
                         "init=<photo>, e.g. cv.optvis.feature_accentuation(model, photo, layer, unit).")
    extra = diversity_objective(OUTPUT if layer is None else layer, div_weight, n) if div_weight else None
    penalty = None
    if config.l2:
        penalty = reg.l2(config.l2)
    if config.tv:
        penalty = reg.total_variation(config.tv) if penalty is None else penalty + reg.total_variation(config.tv)
    layers = list(target.layers) + (list(extra.layers) if extra else [])
    for name in layers:
        if name not in (OUTPUT, IMAGE):
            model.layer(name)

    relus = reg.redirect_relus(net) if config.redirect_relu_steps else []
    init_seeds, transform_seeds = image_seeds(seed, units, n)
    kwargs = dict(sd=config.sd, decorrelate=config.decorrelate, sigmoid=config.sigmoid, channels=model.channels)
    if config.param == "fourier":
        kwargs["decay_power"] = config.decay_power
    if config.param == "generator":
        kwargs["generator"] = generator
    param = make_image(config.param, init_seeds, size, device=device, **kwargs)
    if init is not None:
        param.set_images(init.to(device))
    raw = next(iter(param.parameters()))
    batch_dim = 1 if config.param == "fourier" else 0
    if transforms is not None:
        draws = torch.stack([transforms.draw(s, steps) for s in transform_seeds], 1).to(device)  # [steps, B, 6]
    normalized = config.param == "generator"  # DGN-AM's normalized-gradient steps on the code
    optimizer = torch.optim.NAdam if config.optimizer == "nadam" else torch.optim.Adam
    opt = None if normalized else optimizer(param.parameters(), lr=config.lr)
    lr_end = config.lr if config.lr_end is None else config.lr_end
    history = torch.empty(steps, len(image_units), device=device)
    snaps: dict[int, torch.Tensor] = {}
    transparency = None  # Fel et al.'s transparency: sum over steps of |d objective / d image|

    ran = steps
    with _Capture(net, layers) as capture:
        if config.anchor:
            with torch.no_grad():  # the seed as the parameterization renders it (Horama does the same)
                anchor = param().detach()
        if 0 in snapshot_steps:
            with torch.no_grad():
                snaps[0] = param().detach().clone()
            if on_snapshot is not None:
                on_snapshot(0, snaps[0].float().cpu().numpy(), history[:0].cpu().numpy())
        for step in range(steps):
            if stop is not None and stop.is_set():
                ran = step
                break
            for relu in relus:
                relu.active = step < config.redirect_relu_steps
            if opt is not None:
                opt.zero_grad(set_to_none=True)
            else:
                raw.grad = None
            image = param()
            image.retain_grad()
            x = transforms(image, draws[step], in_size) if transforms is not None else resize(image, in_size)
            acts = dict(capture(normalize(x)))
            acts[IMAGE] = image
            value = crops_target(acts)
            if k > 1:
                value = value.view(-1, k).mean(1)
            total = value if extra is None else value + extra(acts)
            if penalty is not None:
                total = total - penalty(acts)
            if config.anchor:
                total = total - config.anchor * (image - anchor).pow(2).flatten(1).mean(1)
            (-total.sum()).backward()
            if image.grad is not None:
                g = image.grad.abs()
                transparency = g if transparency is None else transparency.add_(g)
            if config.grad_clip is not None:
                reg.clip_grad_per_image_(raw.grad, config.grad_clip, batch_dim)
            if opt is not None:
                opt.step()
            else:
                with torch.no_grad():  # h += step / mean|g| * g per image (the loss is -objective)
                    step_size = config.lr + (lr_end - config.lr) * step / max(steps, 1)
                    scale = raw.grad.abs().flatten(1).mean(1).clamp_min(1e-12)
                    raw.sub_(raw.grad * (step_size / scale).view(-1, *[1] * (raw.dim() - 1)))
            if config.decay:
                reg.decay_(raw, config.decay)
            if config.blur_every and (step + 1) % config.blur_every == 0:
                reg.blur_(raw, config.blur_sigma)
            if config.clip_percentile:
                reg.clip_small_norm_(raw, config.clip_percentile)
            if normalized:
                param.clip_()
            history[step].copy_(value.detach())
            if step + 1 in snapshot_steps:
                with torch.no_grad():
                    snaps[step + 1] = param().detach().clone()
                if on_snapshot is not None:
                    on_snapshot(step + 1, snaps[step + 1].float().cpu().numpy(), history[:step + 1].cpu().numpy())
            bar.update(len(units))
        for relu in relus:
            relu.active = False
        with torch.no_grad():
            image = param()
            acts = dict(capture(normalize(resize(image, in_size))))
            acts[IMAGE] = image
            final = target(acts)

    if transparency is None:
        transparency = torch.zeros_like(image)
    return dict(images=image.float().cpu().numpy(), activations=final.float().cpu().numpy(),
                transparency=transparency.float().cpu().numpy(),
                history=history[:ran].cpu().numpy(), snapshots={s: t.float().cpu().numpy() for s, t in snaps.items()})
