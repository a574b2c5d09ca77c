"""Tests of the Broden format reader and writer (Bau et al. 2017, Network Dissection)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnvis_widgets.datasets.broden import Broden, BrodenFormatError, BrodenWriter

# -- a miniature written by hand ------------------------------------------------

INDEX_CSV = """\
image,split,ih,iw,sh,sw,color,object,material,part,scene,texture,
ade/img0.png,train,4,6,2,3,ade/img0_color.png,ade/img0_obj_a.png;ade/img0_obj_b.png,,,5,6,
other/img1.png,val,4,4,2,2,,,other/img1_mat.png,,5,,
other/img2.png,train,2,2,1,1,,,,,,,
"""

CATEGORY_CSV = """\
name,first,last,count,frequency
color,1,1,1,1
object,2,300,2,1
material,3,3,1,1
part,4,4,1,0
scene,5,5,1,2
texture,6,6,1,1
"""

# Numbers 7..299 are unused; 300 needs the G channel (300 = 44 + 256 * 1).
LABEL_CSV = """\
number,name,category,frequency,coverage,syns
1,red-c,color(1),1,0.5,red
2,person,object(1),1,0.333333,person;human
3,wall,object(2);material(5),2,0.25,wall
4,hair,part(0),0,0.0,
5,street-s,scene(2),2,1.0,street
6,striped-t,texture(1),1,1.0,
300,sky,object(1),1,0.166667,sky
"""

IMG0 = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
IMG1 = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
IMG2 = np.full((2, 2, 3), (10, 20, 30), dtype=np.uint8)
COLOR0 = np.array([[1, 1, 0], [1, 0, 0]])
# Pixels (0, 0) and (1, 1) are labelled in both object layers.
OBJ0_A = np.array([[2, 2, 300], [0, 2, 300]])
OBJ0_B = np.array([[3, 0, 0], [0, 3, 0]])
MAT1 = np.array([[3, 3], [0, 0]])


def _rgb_codes(codes: np.ndarray) -> np.ndarray:
    rgb = np.zeros((*codes.shape, 3), dtype=np.uint8)
    rgb[..., 0] = codes % 256
    rgb[..., 1] = codes // 256
    return rgb


def make_mini(root: Path) -> Path:
    images = root / "images"
    (images / "ade").mkdir(parents=True)
    (images / "other").mkdir()
    (root / "index.csv").write_text(INDEX_CSV)
    (root / "category.csv").write_text(CATEGORY_CSV)
    (root / "label.csv").write_text(LABEL_CSV)
    Image.fromarray(IMG0).save(images / "ade/img0.png")
    Image.fromarray(IMG1).save(images / "other/img1.png")
    Image.fromarray(IMG2).save(images / "other/img2.png")
    Image.fromarray(_rgb_codes(COLOR0)).save(images / "ade/img0_color.png")
    Image.fromarray(_rgb_codes(OBJ0_A)).save(images / "ade/img0_obj_a.png")
    Image.fromarray(_rgb_codes(OBJ0_B)).save(images / "ade/img0_obj_b.png")
    # A single-channel mask: the pixel value is the code.
    Image.fromarray(MAT1.astype(np.uint8), mode="L").save(images / "other/img1_mat.png")
    return root


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    return make_mini(tmp_path / "mini")


def test_metadata(mini):
    ds = Broden(mini)
    assert len(ds) == 3
    assert ds.categories == ["color", "object", "material", "part", "scene", "texture"]
    assert ds.splits == ["train", "val"]
    assert [label.number for label in ds.labels] == [1, 2, 3, 4, 5, 6, 300]
    wall = ds.label(3)
    assert wall.name == "wall"
    assert wall.categories == {"object": 2, "material": 5}
    assert wall.category == "material"  # largest count, though listed second
    assert wall.frequency == 2 and wall.coverage == 0.25
    assert ds.label(2).syns == ("person", "human")
    assert len(ds.label_names) == 301
    assert ds.label_names[0] == "-" and ds.label_names[7] == "-"
    assert ds.label_names[3] == "wall" and ds.label_names[300] == "sky"
    assert ds.labels_in("object") == [2, 300]
    assert ds.labels_in("material") == [3]
    assert ds.labels_in("scene") == [5]
    assert ds.label_number("wall") == 3
    assert ds.label_number("sky", "object") == 300
    with pytest.raises(KeyError):
        ds.label_number("wall", "object")
    assert ds.category_info["object"].last == 300
    assert ds.image_path(0) == mini / "images" / "ade" / "img0.png"
    assert ds.image_size_of(0) == (4, 6) and ds.seg_size(0) == (2, 3)
    assert ds.image_size_of(2) == (2, 2) and ds.seg_size(2) == (1, 1)


def test_split_filter(mini):
    train, val = Broden(mini, split="train"), Broden(mini, split="val")
    assert len(train) == 2 and len(val) == 1
    assert train.image_path(1).name == "img2.png"
    assert val.image_path(0).name == "img1.png"
    assert val.split_of(0) == "val"
    with pytest.raises(ValueError, match="splits present"):
        Broden(mini, split="test")


def test_segmentation_decodes_masks(mini):
    ds = Broden(mini)
    seg = ds.segmentation(0)
    assert list(seg) == ds.categories
    assert seg["object"].masks.dtype == np.int64
    np.testing.assert_array_equal(seg["object"].masks, np.stack([OBJ0_A, OBJ0_B]))
    np.testing.assert_array_equal(seg["color"].masks, COLOR0[None])
    assert seg["object"].image_labels == []
    assert seg["material"].masks.shape == (0, 2, 3)
    assert seg["part"].masks.shape == (0, 2, 3)
    assert seg["scene"].image_labels == [5]
    assert seg["texture"].image_labels == [6]
    assert seg["scene"].masks.shape == (0, 2, 3)

    seg1 = ds.segmentation(1)
    np.testing.assert_array_equal(seg1["material"].masks, MAT1[None])
    assert seg1["scene"].image_labels == [5] and seg1["texture"].image_labels == []
    seg2 = ds.segmentation(2)
    assert all(s.masks.shape == (0, 1, 1) and s.image_labels == [] for s in seg2.values())


def test_label_masks(mini):
    ds = Broden(mini)
    objects = ds.label_masks(0, "object")
    assert list(objects) == [2, 3, 300]
    np.testing.assert_array_equal(objects[2], OBJ0_A == 2)
    np.testing.assert_array_equal(objects[3], OBJ0_B == 3)
    np.testing.assert_array_equal(objects[300], [[False, False, True], [False, False, True]])
    assert objects[2].dtype == bool
    scene = ds.label_masks(0, "scene")
    assert list(scene) == [5] and scene[5].shape == (2, 3) and scene[5].all()
    everything = ds.label_masks(0)
    assert list(everything) == [1, 2, 3, 5, 6, 300]
    assert ds.label_masks(2) == {}
    with pytest.raises(KeyError):
        ds.label_masks(0, "weather")


def test_getitem_values_and_resize(mini):
    ds = Broden(mini)
    x = ds[0]
    assert x.dtype == torch.float32 and x.shape == (3, 4, 6)
    expected = torch.from_numpy(IMG0.astype(np.float32) / 255).permute(2, 0, 1)
    assert torch.equal(x, expected)
    assert torch.equal(ds[-1], ds[2])
    with pytest.raises(IndexError):
        ds[3]

    assert Broden(mini, image_size=8)[0].shape == (3, 8, 8)
    assert Broden(mini, image_size=(2, 3))[1].shape == (3, 2, 3)
    flat = Broden(mini, image_size=(5, 7))[2]  # a constant image stays constant
    torch.testing.assert_close(flat, torch.tensor([10, 20, 30]).div(255).float()[:, None, None].expand(3, 5, 7))
    assert float(Broden(mini, image_size=3)[0].min()) >= 0.0


def test_loader(mini):
    with pytest.raises(ValueError, match="image_size"):
        Broden(mini).loader(2)
    ds = Broden(mini, image_size=4)
    batches = list(ds.loader(2))
    assert [b[0].tolist() for b in batches] == [[0, 1], [2]]
    indices, images = batches[0]
    assert indices.dtype == torch.int64 and images.shape == (2, 3, 4, 4)
    assert torch.equal(images[1], ds[1])
    (indices, images), = list(ds.loader(8, indices=[2, 0]))
    assert indices.tolist() == [2, 0] and torch.equal(images[0], ds[2])
    # One size throughout: batching works without image_size.
    val = Broden(mini, split="val")
    (indices, images), = list(val.loader(4))
    assert images.shape == (1, 3, 4, 4)


# -- the writer ------------------------------------------------------------------

W_CATEGORIES = ["color", "object", "scene"]
# 1 red, 2 blue (color); 3 beach (scene); 4..300 thing0..thing296 (object)
W_LABELS = [("red", "color"), ("blue", "color"), ("beach", "scene")] + [
    (f"thing{k}", "object") for k in range(297)
]
A_IMAGE = np.random.default_rng(2).integers(0, 256, (4, 8, 3), dtype=np.uint8)
A_COLOR = np.array([[1, 1, 0, 0], [0, 0, 0, 2]])
A_OBJECT = [np.array([[300, 300, 300, 300], [0, 0, 0, 0]]), np.array([[300, 0, 0, 0], [4, 4, 4, 4]])]
B_IMAGE = np.random.default_rng(3).integers(0, 256, (4, 8, 3), dtype=np.uint8)
B_COLOR = np.ones((2, 4), dtype=np.int32)
C_IMAGE = np.random.default_rng(4).integers(0, 256, (6, 6, 3), dtype=np.uint8)


def write_sample(root: Path) -> Path:
    with BrodenWriter(root, W_CATEGORIES, W_LABELS) as writer:
        assert writer.add(A_IMAGE, "train", {"color": [A_COLOR], "object": A_OBJECT}, {"scene": [3]}) == 0
        assert writer.add(B_IMAGE, "val", {"color": [B_COLOR]}) == 1
        assert writer.add(C_IMAGE, "train") == 2
        assert not root.exists()  # nothing at root until close()
    return root


def test_round_trip(tmp_path):
    ds = Broden(write_sample(tmp_path / "w"))
    assert ds.categories == W_CATEGORIES and len(ds) == 3
    assert ds.image_path(0) == tmp_path / "w" / "images" / "train" / "000000.png"
    assert ds.image_path(1) == tmp_path / "w" / "images" / "val" / "000001.png"
    for i, image in enumerate([A_IMAGE, B_IMAGE, C_IMAGE]):
        assert torch.equal(ds[i], torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    seg = ds.segmentation(0)
    np.testing.assert_array_equal(seg["color"].masks, A_COLOR[None])
    np.testing.assert_array_equal(seg["object"].masks, np.stack(A_OBJECT))
    assert seg["scene"].image_labels == [3] and seg["scene"].masks.shape == (0, 2, 4)
    mask_png = np.asarray(Image.open(tmp_path / "w" / "images" / "train" / "000000_object_0.png"))
    assert mask_png.shape == (2, 4, 3) and tuple(mask_png[0, 0]) == (44, 1, 0)
    np.testing.assert_array_equal(ds.segmentation(1)["color"].masks, B_COLOR[None])
    assert ds.seg_size(2) == (3, 3)  # no masks: half the image size
    assert all(s.masks.shape == (0, 3, 3) for s in ds.segmentation(2).values())
    assert ds.label_number("thing296") == 300
    assert ds.labels_in("color") == [1, 2]
    assert len(Broden(tmp_path / "w", split="train")) == 2


def test_statistics(tmp_path):
    root = write_sample(tmp_path / "w")
    ds = Broden(root)
    # red: 2/8 of A, all of B -> (0.25 + 1) / 2; blue: 1/8 of A;
    # 300: union of two layers in A is 4/8; 4: 4/8 of A; beach: image-level.
    expected = {1: (2, 0.625), 2: (1, 0.125), 3: (1, 1.0), 4: (1, 0.5), 300: (1, 0.5), 5: (0, 0.0)}
    for number, (frequency, coverage) in expected.items():
        label = ds.label(number)
        assert (label.frequency, label.coverage) == (frequency, coverage), number
        assert label.categories == {label.category: frequency}
    lines = (root / "label.csv").read_text().splitlines()
    assert lines[0] == "number,name,category,frequency,coverage,syns"
    assert lines[1] == "1,red,color(2),2,0.625000,"
    assert lines[300] == "300,thing296,object(1),1,0.500000,"
    assert (root / "category.csv").read_text().splitlines() == [
        "name,first,last,count,frequency",
        "color,1,2,2,2",
        "object,4,300,297,1",
        "scene,3,3,1,1",
    ]
    codes = (root / "c_object.csv").read_text().splitlines()
    assert codes[0] == "code,number,name,frequency,coverage"
    assert codes[1] == "1,4,thing0,1,0.500000" and codes[297] == "297,300,thing296,1,0.500000"
    assert (root / "c_color.csv").read_text().splitlines()[1:] == [
        "1,1,red,2,0.625000",
        "2,2,blue,1,0.125000",
    ]
    assert (root / "index.csv").read_text().splitlines() == [
        "image,split,ih,iw,sh,sw,color,object,scene",
        "train/000000.png,train,4,8,2,4,train/000000_color_0.png,"
        "train/000000_object_0.png;train/000000_object_1.png,3",
        "val/000001.png,val,4,8,2,4,val/000001_color_0.png,,",
        "train/000002.png,train,6,6,3,3,,,",
    ]


def test_writer_is_deterministic(tmp_path):
    a, b = write_sample(tmp_path / "a"), write_sample(tmp_path / "b")
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 4 + 3 + 6  # CSVs, images, masks
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no partial folders left


def test_writer_interrupted_leaves_nothing(tmp_path):
    root = tmp_path / "w"
    with pytest.raises(RuntimeError, match="boom"):
        with BrodenWriter(root, W_CATEGORIES, W_LABELS) as writer:
            writer.add(A_IMAGE, "train", {"color": [A_COLOR]})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown category"):
        BrodenWriter(tmp_path / "x", ["color"], [("red", "colour")])
    with BrodenWriter(tmp_path / "w", W_CATEGORIES, W_LABELS) as writer:
        with pytest.raises(ValueError, match="belongs to 'scene'"):
            writer.add(A_IMAGE, "train", {"color": [np.full((2, 4), 3)]})
        with pytest.raises(ValueError, match="share one size"):
            writer.add(A_IMAGE, "train", {"color": [A_COLOR], "object": [np.zeros((3, 3), int)]})
        with pytest.raises(ValueError, match="uint8"):
            writer.add(A_IMAGE.astype(np.float32), "train")
        assert len(writer) == 0
    with pytest.raises(FileExistsError):
        BrodenWriter(tmp_path / "w", W_CATEGORIES, W_LABELS)
    with BrodenWriter(tmp_path / "w", W_CATEGORIES, W_LABELS, overwrite=True) as writer:
        writer.add(C_IMAGE, "val")
    assert len(Broden(tmp_path / "w")) == 1


# -- errors ----------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _raises(where: str, *parts: str, call=None, root=None):
    with pytest.raises(BrodenFormatError) as info:
        call() if call is not None else Broden(root)
    message = str(info.value)
    assert where in message, message
    for part in parts:
        assert part in message, message
    return info.value


def test_missing_file_of_first_row(mini):
    (mini / "images" / "ade" / "img0_obj_b.png").unlink()
    error = _raises("index.csv line 2", "'object'", "img0_obj_b.png", "does not exist", root=mini)
    assert error.line == 2 and error.file == mini / "index.csv"


def test_missing_file_found_when_read(mini):
    (mini / "images" / "other" / "img1_mat.png").unlink()
    ds = Broden(mini)
    ds.segmentation(0)
    _raises("index.csv line 3", "'material'", "img1_mat.png", call=lambda: ds.segmentation(1))
    _raises("index.csv line 3", call=ds.verify)
    (mini / "images" / "other" / "img2.png").unlink()
    _raises("index.csv line 4", "'image'", "img2.png", call=lambda: ds[2])


def test_bad_int(mini):
    _edit(mini / "index.csv", "other/img1.png,val,4,", "other/img1.png,val,abc,")
    _raises("index.csv line 3", "'ih'", "'abc'", "not an integer", root=mini)


def test_bad_int_in_label_csv(mini):
    _edit(mini / "label.csv", "2,person", "two,person")
    _raises("label.csv line 3", "'number'", "'two'", root=mini)


def test_unknown_label_number(mini):
    _edit(mini / "index.csv", "other/img2.png,train,2,2,1,1,,,,,,,", "other/img2.png,train,2,2,1,1,,,,,99,,")
    _raises("index.csv line 4", "'scene'", "'99'", "label.csv", root=mini)


def test_missing_column(mini):
    _edit(mini / "index.csv", "sh,sw,", "sh,")
    _raises("index.csv line 1", "'sw'", root=mini)


def test_missing_column_in_label_csv(mini):
    _edit(mini / "label.csv", "number,name,category,", "number,name,")
    _raises("label.csv line 1", "'category'", root=mini)


def test_unknown_mask_code(mini):
    Image.fromarray(np.array([[3, 7], [0, 0]], dtype=np.uint8), mode="L").save(
        mini / "images" / "other" / "img1_mat.png")
    ds = Broden(mini)
    _raises("index.csv line 3", "img1_mat.png", "7", "not in label.csv", call=lambda: ds.segmentation(1))


def test_mask_size_mismatch(mini):
    Image.fromarray(_rgb_codes(np.zeros((3, 3), dtype=np.int64))).save(mini / "images" / "ade" / "img0_color.png")
    ds = Broden(mini)
    _raises("index.csv line 2", "3x3", "sh,sw say 2x3", call=lambda: ds.segmentation(0))


def test_ragged_row(mini):
    _edit(mini / "index.csv", "other/img2.png,train,2,2,1,1,,,,,,,", "other/img2.png,train,2,2")
    _raises("index.csv line 4", "cells", root=mini)


def test_missing_csv(mini):
    (mini / "category.csv").unlink()
    _raises("category.csv", "not found", root=mini)
