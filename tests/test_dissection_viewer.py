"""DissectionViewer (Bau et al. 2017's Network Dissection results): the unit metadata, summary chart, category
filter, paged image requests, unit detail and compare mode, against a real dissection of MiniAlexNet."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from cnnvis_widgets.dissection import DissectionResult, LayerDissection, dissect
from cnnvis_widgets.widgets.dissection_records import category_summary, pack_mask, unit_records, visible_units
from cnnvis_widgets.widgets.dissection_viewer import MAX_PAGE_SIZE, DissectionViewer


@pytest.fixture(scope="module")
def result(mini, world):
    return dissect(mini, world, ["conv1", "conv5"], progress=False)


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def unpack(data: bytes, shape) -> np.ndarray:
    count = int(np.prod(shape))
    return np.unpackbits(np.frombuffer(data, np.uint8))[:count].reshape(shape).astype(bool)


def click_bar(panel, index):
    """What bqplot sends when a bar is clicked."""
    category = panel.result.categories[index]
    panel.bars._handle_custom_msgs(None, {"event": "element_click", "data": {"index": index, "x": category, "y": 1}})


def test_unit_metadata_matches_the_result_table(result):
    viewer = DissectionViewer(result, layer="conv5")
    view = viewer.panel.view
    table = result.table("conv5")
    assert view.layer == "conv5" and len(view.units) == len(table) == 64
    assert [u["unit"] for u in view.units] == list(range(64))
    assert [u["label"] for u in view.units] == list(table.label)
    assert [u["category"] for u in view.units] == list(table.category)
    np.testing.assert_allclose([u["iou"] for u in view.units], table.iou, rtol=1e-12)
    assert [u["detector"] for u in view.units] == list(table.detector)
    for record, (_, row) in zip(view.units, table.iterrows()):
        assert [b[0] for b in record["best"]] == [row[f"{c}-label"] for c in result.categories]
        np.testing.assert_allclose([b[1] for b in record["best"]], [row[f"{c}-iou"] for c in result.categories])
        assert result.concept_names[record["concept"]] == record["label"]
    assert view.categories == result.categories
    assert view.iou_threshold == result.iou_threshold
    assert viewer.layer == "conv5" and viewer.panel.picker.options == ("conv1", "conv5")
    # metadata only: no image bytes among the units
    assert not any(isinstance(v, bytes) for u in view.units for v in u.values())


def test_chart_and_summary_count_what_result_summary_counts(result):
    summary = result.summary()
    viewer = DissectionViewer(result, layer="conv1")
    panel = viewer.panel
    for layer in ("conv1", "conv5"):
        panel.picker.value = layer  # the layer picker
        assert panel.layer == layer == panel.view.layer
        expected = [int(summary.loc[layer, c]) for c in result.categories]
        assert list(panel.bars.x) == result.categories
        assert [int(v) for v in panel.bars.y] == expected
        assert [panel.view.summary[c]["concepts"] for c in result.categories] == expected
        assert sum(s["detectors"] for s in panel.view.summary.values()) == summary.loc[layer, "detector units"]
        assert sum(s["units"] for s in panel.view.summary.values()) == summary.loc[layer, "units"]
        table = result.table(layer)
        assert {c: s["units"] for c, s in panel.view.summary.items()} == \
            {c: int((table.category == c).sum()) for c in result.categories}
        assert panel.chart.title == (f"{layer}: {int(summary.loc[layer, 'unique concepts'])} unique concepts · "
                                     f"{int(summary.loc[layer, 'detector units'])}/{len(table)} detectors")
        ticks = np.asarray(panel._y_axis.tick_values)
        assert ticks[0] == 0 and panel._y.max == ticks[-1] >= max(expected) + 1  # headroom above the tallest bar
        assert np.all(ticks == np.round(ticks)) and 2 <= len(ticks) <= 7  # whole numbers of concepts
    assert category_summary(result, "conv5") == panel.view.summary


def test_visible_units_filter_sort_and_page(result):
    records = unit_records(result, "conv5")
    table = result.table("conv5")
    by_iou = list(table.sort_values(["iou", "unit"], ascending=[False, True]).unit)
    assert visible_units(records, "", "iou", 0, 24) == by_iou[:24]
    assert visible_units(records, "", "iou", 2, 24) == by_iou[48:]
    assert visible_units(records, "", "iou", 9, 24) == by_iou[48:]  # past the end: the last page
    assert visible_units(records, "", "unit", 1, 10) == list(range(10, 20))
    for category in result.categories:
        members = table[table.category == category]
        expected = list(members.sort_values(["iou", "unit"], ascending=[False, True]).unit)
        assert visible_units(records, category, "iou", 0, 64) == expected
        assert visible_units(records, category, "unit", 0, 64) == sorted(expected)

    viewer = DissectionViewer(result, layer="conv5", page_size=8)
    view = viewer.panel.view
    assert view.requested_units == by_iou[:8] == viewer.visible_units
    viewer.sort_by = "unit"
    assert view.requested_units == list(range(8))
    viewer.page = 3
    assert view.requested_units == list(range(24, 32))
    assert view.tile_images["units"] == list(range(24, 32))
    viewer.category = "part"  # a new filter starts at its first page
    assert view.page == 0
    assert view.requested_units == sorted(table[table.category == "part"].unit)[:8]


def test_clicking_a_bar_filters_the_gallery_and_clicking_it_again_clears_it(result):
    viewer = DissectionViewer(result, layer="conv5", page_size=40)
    panel = viewer.panel
    table = result.table("conv5")
    part = result.categories.index("part")
    click_bar(panel, part)
    assert viewer.category == "part"
    members = set(table[table.category == "part"].unit)
    assert set(panel.view.requested_units) == members and len(members) == (table.category == "part").sum()
    assert set(panel.view.tile_images["units"]) == members
    assert panel.bars.opacities == [1.0 if c == "part" else 0.3 for c in result.categories]
    click_bar(panel, part)
    assert viewer.category == ""
    assert panel.bars.opacities == [1.0] * len(result.categories)
    assert len(panel.view.requested_units) == 40
    # another bar, then the front end's "all" chip
    click_bar(panel, result.categories.index("scene"))
    assert viewer.category == "scene"
    panel.view.category = ""
    assert panel.bars.opacities == [1.0] * len(result.categories)


def test_requested_page_images_match_unit_images(result):
    viewer = DissectionViewer(result, layer="conv5")
    view = viewer.panel.view
    units = [5, 17, 40]
    view.requested_units = units  # what the front end asks for its page
    answer = view.tile_images
    assert answer["layer"] == "conv5" and answer["units"] == units
    assert answer["mask_shape"] == list(result.seg_size)
    for unit, png, packed in zip(units, answer["images"], answer["masks"]):
        images, unit_masks, _ = result.unit_images("conv5", unit, k=1)
        np.testing.assert_array_equal(decode_png(png), images[0])
        np.testing.assert_array_equal(unpack(packed, result.seg_size), unit_masks[0])
    view.requested_units = [3, 9999, -1]  # units that do not exist are left out
    assert view.tile_images["units"] == [3]


def test_detail_matches_unit_images(result):
    viewer = DissectionViewer(result, layer="conv5")
    labels = result.labels("conv5")
    unit = int(np.argmax(labels["iou"]))
    viewer.select(unit)
    detail = viewer.panel.view.detail
    images, unit_masks, concept_masks = result.unit_images("conv5", unit)
    assert detail["unit"] == unit and detail["layer"] == "conv5"
    assert detail["concept"] == result.concept_names[labels["concept"][unit]]
    assert detail["image_indices"] == [int(i) for i in result.layers["conv5"].top_indices[unit]]
    assert len(detail["images"]) == len(images) == result.layers["conv5"].top_indices.shape[1]
    for png, image in zip(detail["images"], images):
        np.testing.assert_array_equal(decode_png(png), image)
    for packed, mask in zip(detail["unit_masks"], unit_masks):
        np.testing.assert_array_equal(unpack(packed, detail["mask_shape"]), mask)
    for packed, mask in zip(detail["concept_masks"], concept_masks):
        np.testing.assert_array_equal(unpack(packed, detail["mask_shape"]), mask)
    assert any(m.any() for m in unit_masks) and any(m.any() for m in concept_masks)
    viewer.select(None)
    assert viewer.panel.view.detail == {}
    viewer.panel.view.selected_unit = 3  # the front end's click
    assert viewer.panel.view.detail["unit"] == 3
    viewer.layer = "conv1"  # a new layer closes the detail and the filter
    assert viewer.panel.view.selected_unit == -1 and viewer.panel.view.detail == {}


def test_pack_mask_is_numpy_packbits():
    mask = np.zeros((3, 5), bool)
    mask[0, 0] = mask[1, 2] = mask[2, 4] = True
    assert pack_mask(mask) == bytes([0b10000001, 0b00000010])
    np.testing.assert_array_equal(unpack(pack_mask(mask), (3, 5)), mask)


def _state_bytes(value) -> list[bytes]:
    if isinstance(value, (bytes, memoryview)):
        return [bytes(value)]
    if isinstance(value, dict):
        return [b for v in value.values() for b in _state_bytes(v)]
    if isinstance(value, (list, tuple)):
        return [b for v in value for b in _state_bytes(v)]
    return []


def test_payload_is_bounded_by_the_page_not_the_layer(result):
    conv5 = result.layers["conv5"]
    repeat = 8  # 512 units
    big = LayerDissection(
        layer="big", thresholds=np.tile(conv5.thresholds, repeat), intersection=np.tile(conv5.intersection, (repeat, 1)),
        unit_pixels=np.tile(conv5.unit_pixels, (repeat, 1)), top_indices=np.tile(conv5.top_indices, (repeat, 1)),
        top_values=np.tile(conv5.top_values, (repeat, 1)), top_maps=np.tile(conv5.top_maps, (repeat, 1, 1, 1)),
        field=conv5.field, input_size=conv5.input_size)
    large = dataclasses.replace(result, layers={"big": big})
    viewer = DissectionViewer(large, page_size=24)
    viewer.select(100)
    view = viewer.panel.view
    state = view.get_state()
    assert len(state["units"]) == 512
    top_k = conv5.top_indices.shape[1]
    images = state["tile_images"]["images"] + state["detail"]["images"]
    assert len(images) == 24 + top_k  # one page of tiles and one unit's detail, not 512 x 10
    height, width = decode_png(images[0]).shape[:2]
    assert sum(len(b) for b in _state_bytes(state)) < (24 + top_k) * (height * width * 3 + 2 * result.seg_size[0] ** 2)
    view.requested_units = list(range(512))  # a front end asking for too much gets a page's worth at most
    assert len(view.tile_images["images"]) == MAX_PAGE_SIZE


def test_compare_another_layer_another_result_and_a_pair(result):
    viewer = DissectionViewer(result, layer="conv1", compare="conv5")
    assert [(p.result, p.layer) for p in viewer.panels] == [(result, "conv1"), (result, "conv5")]
    left, right = viewer.panels
    assert [int(v) for v in right.bars.y] == [int(result.summary().loc["conv5", c]) for c in result.categories]
    # a category chosen in one panel (here by its bar) is chosen in the other
    click_bar(left, result.categories.index("part"))
    assert left.category == right.category == "part"
    assert all(right.records()[u]["category"] == "part" for u in right.view.requested_units)
    right.view.category = ""
    assert left.category == ""
    viewer.sort_by = "unit"
    assert left.view.sort_by == right.view.sort_by == "unit"

    other = dataclasses.replace(result, model_name="MiniAlexNet (copy)")
    two = DissectionViewer(result, compare=other)
    assert [(p.result.model_name, p.layer) for p in two.panels] == [("MiniAlexNet", "conv5"),
                                                                    ("MiniAlexNet (copy)", "conv5")]
    assert [p.view.title for p in two.panels] == ["MiniAlexNet", "MiniAlexNet (copy)"]
    pair = DissectionViewer(result, layer="conv5", compare=(other, "conv1"), title=["trained", "copy"],
                            link_categories=False)
    assert [(p.view.title, p.layer) for p in pair.panels] == [("trained", "conv5"), ("copy", "conv1")]
    pair.category = "part"
    assert pair.panels[1].category == ""
    assert len(pair.children[0].children) == 2  # side by side in one row


def test_errors_say_what_to_do(result):
    with pytest.raises(TypeError, match="dissect"):
        DissectionViewer("conv5")
    with pytest.raises(ValueError, match="conv1, conv5.*layer="):
        DissectionViewer(result, layer="conv9")
    with pytest.raises(ValueError, match="has no layer 'conv9'; it has conv1, conv5.*compare="):
        DissectionViewer(result, compare="conv9")
    with pytest.raises(TypeError, match=r"compare= got int.*\(other_result, 'conv3'\)"):
        DissectionViewer(result, compare=42)
    with pytest.raises(TypeError, match="compare= got tuple"):
        DissectionViewer(result, compare=(result, 3))
    only_conv1 = dataclasses.replace(result, layers={"conv1": result.layers["conv1"]})
    with pytest.raises(ValueError, match=r"compared result \(MiniAlexNet\) has no layer 'conv5'.*\(other_result, 'conv3'\)"):
        DissectionViewer(result, layer="conv5", compare=only_conv1)
    with pytest.raises(ValueError, match="sort_by must be one of iou, unit"):
        DissectionViewer(result, sort_by="label")
    with pytest.raises(ValueError, match="page_size must be between 1 and 96"):
        DissectionViewer(result, page_size=0)
    with pytest.raises(ValueError, match="one string per panel"):
        DissectionViewer(result, compare="conv1", title=["a", "b", "c"])
    viewer = DissectionViewer(result)
    with pytest.raises(ValueError, match="categories are color, object, part, scene, texture"):
        viewer.category = "animal"
    with pytest.raises(ValueError, match="numbered 0..63"):
        viewer.select(64)
    with pytest.raises(ValueError, match="Pick one of those"):
        viewer.layer = "fc6"


def test_without_the_dataset_the_view_says_how_to_get_images(result):
    bare = dataclasses.replace(result, dataset=None, dataset_root=None)
    viewer = DissectionViewer(bare, layer="conv5")
    view = viewer.panel.view
    assert "set result.dataset = cv.datasets.Broden" in view.status
    assert len(view.units) == 64 and view.tile_images == {}
    viewer.select(2)
    assert view.detail["unit"] == 2 and view.detail["images"] == []
    bare.dataset = result.dataset  # as the message says: the next page has its images and no message
    viewer.page = 1
    assert view.status == "" and len(view.tile_images["images"]) == 24


def test_the_result_displays_as_the_viewer(result, shown):
    from ipywidgets.widgets.widget import _instances

    bundle = shown(result)
    shown = _instances[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]
    assert isinstance(shown, DissectionViewer) and isinstance(result, DissectionResult)
    assert shown.layer == list(result.layers)[-1] and len(shown.panels) == 1
