"""``vlmr1 draw`` and its reusable pieces: overlay colours, frame mapping of predictions, boxes, unparsable answers."""

import json

import numpy as np
import pytest
from PIL import Image

from vlmr1.geometry import fit_contour, mask_to_rle
from vlmr1.tasks import Overlay
from vlmr1.viz.draw import MAX_SIDE, PRED_RGB, TRUE_RGB, main, make_grid, render_overlay, render_row

H, W = 120, 200


def disc():
    y, x = np.mgrid[0:H, 0:W] + 0.5
    return (x - 90) ** 2 + (y - 60) ** 2 <= 35**2


@pytest.fixture
def image_dir(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (W, H), (128, 128, 128)).save(tmp_path / "imgs" / "a.png")
    return tmp_path / "imgs"


def answer(contour) -> str:
    return "<answer>" + json.dumps(contour.to_json_dict(2)) + "</answer>"


def test_render_overlay_fills_truth_green_and_outlines_answer_red():
    image = Image.new("RGB", (W, H), (128, 128, 128))
    polygon = np.array([[20, 20], [60, 20], [60, 60], [20, 60]], dtype=float)
    out = render_overlay(image, Overlay(true_mask=disc(), answer_polygon=polygon), "line one\nline two")
    assert out.width == W and out.height > H  # caption strip below
    px = np.asarray(out)
    g = px[60, 90]
    assert g[1] > g[0] + 40 and g[1] > g[2] + 40  # inside the true mask: green tint
    assert tuple(px[20, 40]) == PRED_RGB  # on the answer's top edge
    assert tuple(px[100, 180]) == (128, 128, 128)  # untouched
    # junk polygons and boxes are ignored, not errors
    render_overlay(image, Overlay(answer_polygon=np.array([[np.nan, 1e300]] * 5), true_boxes=[[1, 2]],
                                  answer_boxes=[["a", 1, 2, 3]], answer_points=[[np.inf, 0]]), "")


def test_large_images_are_drawn_scaled_down():
    big = Image.new("RGB", (4000, 2000))
    out = render_overlay(big, Overlay(true_mask=np.zeros((2000, 4000), bool),
                                      answer_polygon=np.array([[0, 0], [4000, 0], [4000, 2000]])), "x")
    assert out.width == MAX_SIDE
    small = render_overlay(Image.new("RGB", (50, 40)), Overlay(true_boxes=[[10, 10, 20, 20]]), "x", min_side=200)
    assert small.width == 200 and tuple(np.asarray(small)[40, 60]) == TRUE_RGB  # scaled 4x, box scaled with it


def test_predictions_are_mapped_from_the_model_frame(tmp_path, image_dir):
    contour = fit_contour(disc(), "parametric", 8, "refined")
    base = {"id": "s1", "image": "a.png", "mask": mask_to_rle(disc()), "solution": answer(contour),
            "original_sizes": [[W, H]], "image_folder": str(image_dir)}
    rows = [
        {**base, "prediction": "<think>t</think>" + answer(contour), "frame_sizes": [[W, H]]},
        {**base, "prediction": "<think>t</think>" + answer(contour.affine(0.5, 0.5)), "frame_sizes": [[W / 2, H / 2]]},
        {**base, "prediction": "I cannot see it", "frame_sizes": [[W, H]]},
    ]
    with Image.open(image_dir / "a.png") as img:
        ious = [render_row(r, img, predictions=True)[1] for r in rows]
    assert ious[0] > 0.95 and ious[1] == pytest.approx(ious[0], abs=2e-3) and ious[2] is None

    preds = tmp_path / "predictions.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    written = main([str(preds), "--output", str(tmp_path / "vis"), "--predictions"])  # image_folder from the lines
    assert len(written) == 3 and all(p.is_file() for p in written)


def test_rec_lines_draw_boxes(tmp_path, image_dir):
    row = {"id": 7, "image": "a.png", "bbox": [40, 20, 120, 100],
           "conversations": [{"from": "human", "value": "<image>the disc"},
                             {"from": "gpt", "value": "<answer>[50, 20, 120, 100]</answer>"}]}
    with Image.open(image_dir / "a.png") as img:
        drawn, iou = render_row(row, img)
    assert iou == pytest.approx(70 * 80 / (80 * 80))
    assert tuple(np.asarray(drawn)[60, 50]) == PRED_RGB  # the answered box's left edge


def test_bad_lines_name_file_and_line(tmp_path, image_dir, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1, "image": "a.png"}\n{"id": 2}\n')
    assert len(main([str(data), "--image-root", str(image_dir), "--output", str(tmp_path / "o")])) == 1
    assert f"{data}:2: bad_line: the line has no 'image'" in capsys.readouterr().err  # reported, then skipped
    data.write_text('{"id": 1, "image": "missing.png"}\n')
    with pytest.raises(ValueError, match=r"d\.jsonl: nothing_drawn"):
        main([str(data), "--image-root", str(image_dir), "--output", str(tmp_path / "o")])
    assert f"{data}:1: missing_image: " in capsys.readouterr().err


def test_make_grid():
    tiles = [Image.new("RGB", (30, 20)), Image.new("RGB", (10, 40)), Image.new("RGB", (5, 5))]
    grid = make_grid(tiles, columns=2, pad=2)
    assert grid.size == (2 * 30 + 3 * 2, 2 * 40 + 3 * 2)
