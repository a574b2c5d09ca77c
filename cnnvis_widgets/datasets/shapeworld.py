"""ShapeWorld: a procedural world of shapes with pixel-exact concept masks, written in Broden format.

Every image shows one main object (house, car, tree or boat, each made of named parts) in front of a
textured background, with a few small simple shapes around it. The concept masks cover the Broden
categories the renderer can honestly provide (Bau et al. 2017, "Network Dissection"):

- ``color``: the colour name of every pixel (pixels are drawn from a fixed palette, no anti-aliasing);
- ``object``: the main object's and the small shapes' pixels;
- ``part``: the main object's parts (wall, roof, door, window, wheel, body, trunk, crown, hull, sail, mast);
- ``texture``: the background pattern (image-level, as in Broden);
- ``scene``: the image's class (image-level), set by the main object, its colour and the background.

Material is left out: flat-shaded polygons carry no honest material cue.

The classification task of MiniAlexNet is the scene: 4 objects x 4 textures x {warm, cool} main colour =
32 classes, so a network that solves it must see colours, textures, parts and objects.

Rendering is deterministic: image ``i`` of split ``s`` with seed ``seed`` always has the same pixels,
whatever order images are drawn in.
"""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

__all__ = [
    "COLORS",
    "TEXTURES",
    "OBJECTS",
    "SHAPES",
    "PARTS",
    "SCENES",
    "Sample",
    "render",
    "render_batch",
    "shapeworld",
    "shapeworld_images",
    "default_cache_dir",
]

FORMAT_VERSION = 1

# Broden's colour names, each rendered as one exact RGB value.
COLORS: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "blue": (40, 80, 210),
    "brown": (130, 80, 40),
    "green": (40, 160, 60),
    "grey": (128, 128, 128),
    "orange": (250, 140, 20),
    "pink": (245, 150, 190),
    "purple": (140, 60, 180),
    "red": (215, 35, 35),
    "white": (240, 240, 240),
    "yellow": (240, 215, 40),
}
TEXTURES = ("striped", "dotted", "chequered", "zigzagged")
OBJECTS = ("house", "car", "tree", "boat")
SHAPES = ("circle", "square", "triangle", "star")
PARTS = ("wall", "roof", "door", "window", "wheel", "body", "trunk", "crown", "hull", "sail", "mast")
WARM = ("red", "orange", "yellow")
COOL = ("blue", "green", "purple")
BACKGROUND = ("white", "grey", "black", "pink")
SCENES = tuple(f"{tone}-{obj}-{tex}" for obj in OBJECTS for tex in TEXTURES for tone in ("warm", "cool"))
CATEGORIES = ("color", "object", "part", "scene", "texture")


@dataclass
class Sample:
    """One rendered image with its concept annotations (label ids are indices into the tuples above)."""

    image: np.ndarray  # uint8 [H, W, 3]
    color: np.ndarray  # uint8 [H, W], index into COLORS' keys
    object: np.ndarray  # uint8 [H, W], 0 = none, else 1 + index into OBJECTS + SHAPES
    part: np.ndarray  # uint8 [H, W], 0 = none, else 1 + index into PARTS
    texture: int  # index into TEXTURES
    scene: int  # index into SCENES; also the classification target


_COLOR_INDEX = {name: i for i, name in enumerate(COLORS)}
_OBJECT_INDEX = {name: i + 1 for i, name in enumerate(OBJECTS + SHAPES)}
_PART_INDEX = {name: i + 1 for i, name in enumerate(PARTS)}


class _Canvas:
    """Draws every primitive into the RGB image and the colour/object/part maps at once."""

    def __init__(self, size: int):
        self.size = size
        self.color = Image.new("L", (size, size), 0)
        self.object = Image.new("L", (size, size), 0)
        self.part = Image.new("L", (size, size), 0)
        self._draws = [ImageDraw.Draw(im) for im in (self.color, self.object, self.part)]

    def _paint(self, method: str, args, color: str, obj: str | None, part: str | None, **kw):
        codes = (_COLOR_INDEX[color], _OBJECT_INDEX[obj] if obj else 0, _PART_INDEX[part] if part else 0)
        for draw, code in zip(self._draws, codes):
            getattr(draw, method)(args, fill=code, **kw)

    def polygon(self, points, color, obj=None, part=None):
        self._paint("polygon", [tuple(map(float, p)) for p in points], color, obj, part)

    def rect(self, box, color, obj=None, part=None):
        x0, y0, x1, y1 = box
        self._paint("rectangle", [x0, y0, x1 - 1, y1 - 1], color, obj, part)

    def ellipse(self, box, color, obj=None, part=None):
        x0, y0, x1, y1 = box
        self._paint("ellipse", [x0, y0, x1 - 1, y1 - 1], color, obj, part)

    def line(self, points, color, width, obj=None, part=None):
        self._paint("line", [tuple(map(float, p)) for p in points], color, obj, part, width=width)

    def rgb(self) -> np.ndarray:
        palette = np.array(list(COLORS.values()), dtype=np.uint8)
        return palette[np.asarray(self.color)]


def _draw_texture(c: _Canvas, rng: np.random.Generator, texture: str) -> None:
    s = c.size
    fg, bg = rng.choice(len(BACKGROUND), size=2, replace=False)
    fg, bg = BACKGROUND[fg], BACKGROUND[bg]
    c.rect((0, 0, s, s), bg)
    period = int(rng.integers(max(4, s // 12), max(6, s // 6) + 1))
    phase = int(rng.integers(0, period))
    if texture == "striped":
        width = max(1, period // 2)
        vertical = bool(rng.integers(0, 2))
        for k in range(-period + phase, s, period):
            c.rect((k, 0, k + width, s) if vertical else (0, k, s, k + width), fg)
    elif texture == "dotted":
        r = max(1, period // 4)
        for y in range(phase - period, s + period, period):
            for x in range(phase - period, s + period, period):
                c.ellipse((x - r, y - r, x + r + 1, y + r + 1), fg)
    elif texture == "chequered":
        cell = max(2, period // 2)
        for y in range(-phase, s, cell):
            for x in range(-phase, s, cell):
                if ((x + phase) // cell + (y + phase) // cell) % 2 == 0:
                    c.rect((x, y, x + cell, y + cell), fg)
    elif texture == "zigzagged":
        amp = max(2, period // 2)
        width = max(1, period // 4)
        for y0 in range(phase - period, s + period, period):
            pts = [(x, y0 + (amp if (x // amp) % 2 else 0)) for x in range(-amp, s + 2 * amp, amp)]
            c.line(pts, fg, width)
    else:  # pragma: no cover - TEXTURES is closed
        raise ValueError(texture)


def _draw_shape(c: _Canvas, rng: np.random.Generator, shape: str, cx: float, cy: float, r: float, color: str):
    if shape == "circle":
        c.ellipse((cx - r, cy - r, cx + r, cy + r), color, shape)
    elif shape == "square":
        c.rect((round(cx - r), round(cy - r), round(cx + r), round(cy + r)), color, shape)
    elif shape == "triangle":
        c.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], color, shape)
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        c.polygon(np.stack([cx + radii * np.cos(angles), cy - radii * np.sin(angles)], 1), color, shape)


def _draw_object(c: _Canvas, rng: np.random.Generator, obj: str, x: float, y: float, w: float, body: str):
    """Draw the main object with its parts inside the box starting at (x, y) of width w."""
    pick = lambda names: names[int(rng.integers(0, len(names)))]  # noqa: E731
    if obj == "house":
        h = w * 0.6
        wall_top = y + w * 0.4
        c.polygon([(x - w * 0.08, wall_top), (x + w / 2, y), (x + w * 1.08, wall_top)], pick(("brown", "black")), obj, "roof")
        c.rect((round(x), round(wall_top), round(x + w), round(wall_top + h)), body, obj, "wall")
        dw = max(2, round(w * 0.2))
        dx = round(x + w * 0.4)
        c.rect((dx, round(wall_top + h * 0.45), dx + dw, round(wall_top + h)), pick(("brown", "black")), obj, "door")
        ww = max(2, round(w * 0.18))
        for wx in (x + w * 0.1, x + w * 0.72):
            c.rect((round(wx), round(wall_top + h * 0.2), round(wx) + ww, round(wall_top + h * 0.2) + ww), "white", obj, "window")
    elif obj == "car":
        h = w * 0.3
        top = y + w * 0.25
        c.polygon([(x + w * 0.2, top), (x + w * 0.3, y), (x + w * 0.7, y), (x + w * 0.8, top)], body, obj, "body")
        c.rect((round(x), round(top), round(x + w), round(top + h)), body, obj, "body")
        c.polygon([(x + w * 0.33, top - 1), (x + w * 0.37, y + w * 0.06), (x + w * 0.63, y + w * 0.06), (x + w * 0.67, top - 1)], "white", obj, "window")
        r = w * 0.12
        for wx in (x + w * 0.22, x + w * 0.78):
            c.ellipse((wx - r, top + h - r, wx + r, top + h + r), "black", obj, "wheel")
    elif obj == "tree":
        tw = max(2, round(w * 0.18))
        tx = round(x + w / 2 - tw / 2)
        c.rect((tx, round(y + w * 0.55), tx + tw, round(y + w * 1.05)), "brown", obj, "trunk")
        c.ellipse((x + w * 0.05, y, x + w * 0.95, y + w * 0.7), body, obj, "crown")
    elif obj == "boat":
        c.rect((round(x + w * 0.47), round(y), round(x + w * 0.47) + max(1, round(w * 0.05)), round(y + w * 0.7)), "black", obj, "mast")
        c.polygon([(x + w * 0.55, y + w * 0.05), (x + w * 0.55, y + w * 0.62), (x + w * 0.95, y + w * 0.62)], "white", obj, "sail")
        c.polygon([(x, y + w * 0.68), (x + w, y + w * 0.68), (x + w * 0.8, y + w * 0.95), (x + w * 0.2, y + w * 0.95)], body, obj, "hull")


def render(seed: int, index: int, size: int = 64, split: str = "train") -> Sample:
    """Render image ``index`` of ``split``; the same arguments always give the same sample."""
    split_code = zlib.crc32(split.encode())
    rng = np.random.default_rng([seed, split_code, index])
    scene = int(rng.integers(0, len(SCENES)))
    tone, obj, texture = SCENES[scene].split("-")
    c = _Canvas(size)
    _draw_texture(c, rng, texture)
    w = size * rng.uniform(0.42, 0.62)
    x = rng.uniform(size * 0.04, size * 0.96 - w)
    y = rng.uniform(size * 0.04, size * 0.96 - w)
    # Small shapes in the free corners, drawn first so the main object stays whole.
    for _ in range(int(rng.integers(0, 3))):
        r = size * rng.uniform(0.05, 0.09)
        cx, cy = rng.uniform(r, size - r, size=2)
        shape = SHAPES[int(rng.integers(0, len(SHAPES)))]
        color = (WARM + COOL)[int(rng.integers(0, 6))]
        _draw_shape(c, rng, shape, cx, cy, r, color)
    body = (WARM if tone == "warm" else COOL)[int(rng.integers(0, 3))]
    _draw_object(c, rng, obj, x, y, w, body)
    return Sample(
        image=c.rgb(),
        color=np.asarray(c.color).copy(),
        object=np.asarray(c.object).copy(),
        part=np.asarray(c.part).copy(),
        texture=TEXTURES.index(texture),
        scene=scene,
    )


def render_batch(seed: int, start: int, count: int, size: int = 64, split: str = "train"):
    """Images [count, 3, size, size] (uint8) and scene targets [count] (int64) as numpy arrays."""
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    targets = np.empty(count, dtype=np.int64)
    for k in range(count):
        s = render(seed, start + k, size, split)
        images[k] = s.image.transpose(2, 0, 1)
        targets[k] = s.scene
    return images, targets


def _label_table() -> tuple[list[tuple[str, str]], dict[tuple[str, str], int]]:
    labels = [(n, "color") for n in COLORS] + [(n, "object") for n in OBJECTS + SHAPES]
    labels += [(n, "part") for n in PARTS] + [(n, "scene") for n in SCENES] + [(n, "texture") for n in TEXTURES]
    return labels, {lab: i + 1 for i, lab in enumerate(labels)}


def default_cache_dir() -> Path:
    """``$CNNVIS_CACHE`` if set, else ``$XDG_CACHE_HOME/cnnvis_widgets`` or ``~/.cache/cnnvis_widgets``."""
    if os.environ.get("CNNVIS_CACHE"):
        return Path(os.environ["CNNVIS_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cnnvis_widgets"


SPLIT_SIZES = {"train": 4000, "val": 1000}


def write_shapeworld(root: str | os.PathLike, seed: int = 0, size: int = 64, sizes: dict[str, int] | None = None) -> Path:
    """Render ShapeWorld into ``root`` in Broden format (masks at half the image size, as Broden)."""
    from .broden import BrodenWriter

    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    labels, number = _label_table()
    color_lut = np.array([number[(n, "color")] for n in COLORS], dtype=np.int64)
    object_lut = np.array([0] + [number[(n, "object")] for n in OBJECTS + SHAPES], dtype=np.int64)
    part_lut = np.array([0] + [number[(n, "part")] for n in PARTS], dtype=np.int64)
    bar = tqdm(total=sum(sizes.values()), desc=f"generating ShapeWorld in {root}", unit="img", leave=False)
    with bar, BrodenWriter(root, list(CATEGORIES), labels) as writer:
        for split, count in sizes.items():
            for i in range(count):
                bar.update()
                s = render(seed, i, size, split)
                half = (slice(None, None, 2), slice(None, None, 2))  # nearest-neighbour downsampling
                writer.add(
                    s.image,
                    split,
                    pixel_masks={
                        "color": [color_lut[s.color[half]]],
                        "object": [object_lut[s.object[half]]],
                        "part": [part_lut[s.part[half]]] if s.part.any() else [],
                    },
                    image_labels={
                        "scene": [number[(SCENES[s.scene], "scene")]],
                        "texture": [number[(TEXTURES[s.texture], "texture")]],
                    },
                )
    return Path(root)


def shapeworld(split: str | None = "val", seed: int = 0, size: int = 64, root: str | os.PathLike | None = None,
               sizes: dict[str, int] | None = None):
    """The ShapeWorld concept dataset as a :class:`~cnnvis_widgets.datasets.Broden`, generated on first use.

    Args:
        split: ``"train"``, ``"val"`` or ``None`` for both.
        seed: the world's seed; the same seed gives the same files, byte for byte.
        size: image side in pixels (masks are half of it, as in Broden).
        root: where to write it; default: a folder in :func:`default_cache_dir` named by the parameters.
        sizes: images per split, default ``{"train": 4000, "val": 1000}``.
    """
    from .broden import Broden

    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    if split is not None and split not in sizes:
        raise ValueError(f"unknown split {split!r}: use one of {sorted(sizes)} or None for all images")
    if root is None:
        tag = "-".join(f"{k}{v}" for k, v in sorted(sizes.items()))
        root = default_cache_dir() / f"shapeworld-v{FORMAT_VERSION}-seed{seed}-{size}px-{tag}"
    root = Path(root)
    if not (root / "index.csv").exists():
        if root.exists():
            shutil.rmtree(root)
        try:
            write_shapeworld(root, seed=seed, size=size, sizes=sizes)
        except OSError:
            if not (root / "index.csv").exists():
                raise
            # another process generated the same world at the same time; its files are identical

    return Broden(root, split=split)


def shapeworld_images(split: str = "train", count: int | None = None, world_seed: int = 0):
    """ShapeWorld images [count, 3, 64, 64] in [0, 1] as a float tensor: the pixels of
    ``shapeworld(split)`` (the first ``count``; default the whole split), rendered directly instead of read
    from its files."""
    import torch

    images, _ = render_batch(world_seed, 0, SPLIT_SIZES[split] if count is None else count, 64, split)
    return torch.from_numpy(images).float().div_(255)
