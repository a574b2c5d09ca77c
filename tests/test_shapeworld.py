import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from cnnvis_widgets.datasets import Broden
from cnnvis_widgets.datasets.shapeworld import COLORS, OBJECTS, PARTS, SCENES, TEXTURES, render, write_shapeworld

SIZES = {"train": 6, "val": 10}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = _digest(write_shapeworld(tmp_path / "a", seed=3, sizes=SIZES))
    b = _digest(write_shapeworld(tmp_path / "b", seed=3, sizes=SIZES))
    c = _digest(write_shapeworld(tmp_path / "c", seed=4, sizes=SIZES))
    assert a == b
    assert len(a) > 16 * 3  # images plus masks plus the CSVs
    images = [k for k in a if k.endswith(".png") and "_" not in Path(k).name]
    assert sum(a[k] != c[k] for k in images) == len(images)


def test_masks_match_the_pixels(tmp_path):
    world = Broden(write_shapeworld(tmp_path / "w", seed=0, sizes=SIZES))
    assert len(world) == 16
    assert world.categories == ["color", "object", "part", "scene", "texture"]
    palette = {world.label_number(name, "color"): np.array(rgb) for name, rgb in COLORS.items()}
    for i in range(len(world)):
        rgb = np.asarray(Image.open(world.image_path(i)).convert("RGB"))
        seg = world.segmentation(i)
        colour = seg["color"].masks[0]
        assert colour.shape == (32, 32) and rgb.shape == (64, 64, 3)
        # every mask pixel names the exact colour of the image pixel it was sampled from
        expected = np.stack([palette[n] for n in colour.ravel()]).reshape(32, 32, 3)
        np.testing.assert_array_equal(rgb[::2, ::2], expected)
        objects = seg["object"].masks[0]
        parts = seg["part"].masks[0]
        scene = world.label(seg["scene"].image_labels[0]).name
        tone, obj, texture = scene.split("-")
        assert world.label(seg["texture"].image_labels[0]).name == texture
        main = world.label_number(obj, "object")
        assert (objects == main).sum() > 20
        # parts lie on the main object, and the object is mostly covered by its parts
        assert np.all(objects[parts > 0] == main)
        assert (parts[objects == main] > 0).mean() > 0.9


def test_scene_classes_are_balanced_and_complete():
    scenes = np.bincount([render(0, i).scene for i in range(640)], minlength=len(SCENES))
    assert len(SCENES) == len(OBJECTS) * len(TEXTURES) * 2
    assert scenes.min() > 5
    assert len(set(PARTS)) == len(PARTS)


def test_render_is_order_independent():
    late = render(0, 41, split="val")
    for i in range(3):
        render(0, i, split="val")
    again = render(0, 41, split="val")
    np.testing.assert_array_equal(late.image, again.image)
    assert not np.array_equal(render(0, 41, split="train").image, late.image)
