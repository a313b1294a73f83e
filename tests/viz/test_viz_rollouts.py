"""Rollout pictures: each task draws its completions (truth green, answer red), with rewards and the answer text."""

import json

import numpy as np
import pytest
from PIL import Image

from vlmr1.geometry import fit_contour, mask_to_rle
from vlmr1.tasks import Overlay, Task
from vlmr1.viz.draw import PRED_RGB, TRUE_RGB
from vlmr1.viz.rollouts import (
    Rollout,
    clip_lines,
    completion_caption,
    draw_rollout_tile,
    draw_rollouts,
    group_by_prompt,
    question_text,
)

H, W = 120, 200  # drawn at this size: the longer side is under the 224 px tile, so pixels map 1:1


def disc():
    y, x = np.mgrid[0:H, 0:W] + 0.5
    return (x - 90) ** 2 + (y - 60) ** 2 <= 35**2


def row(task_type, images=1, **fields):
    return {"id": f"{task_type}-0", "source": "d.jsonl:1", "task_type": task_type,
            "images": [Image.new("RGB", (W, H), (128, 128, 128)) for _ in range(images)],
            "original_sizes": [[W, H]] * images, "frame_sizes": [[W, H]] * images,
            "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the disc?"}]}],
            **fields}


def tile(task_type, completion, **fields):
    from vlmr1.tasks import get_task

    r = row(task_type, **fields)
    return np.asarray(draw_rollout_tile(Rollout(r, completion, {"r": 1.0}, 1.0, 12), get_task(task_type)))


def is_red(px):
    return tuple(px) == PRED_RGB


def test_seg_draws_the_answered_contour_over_the_true_mask():
    contour = fit_contour(disc(), "parametric", 8, "refined")
    answer = "<think>round</think><answer>" + json.dumps(contour.to_json_dict(1)) + "</answer>"
    px = tile("seg", answer, mask=mask_to_rle(disc()), solution=answer)
    assert px.shape[1] == W and px.shape[0] > H  # caption strip below the image
    green = px[60, 90]
    assert green[1] > green[0] + 40 and green[1] > green[2] + 40  # inside the true mask
    top = px[18:32, 90]  # the contour crosses x = 90 near the disc's top (y = 25)
    assert any(is_red(p) for p in top)
    assert tuple(px[100, 185]) == (128, 128, 128)


def test_rec_draws_the_true_and_the_answered_box():
    px = tile("rec", "<answer>[50, 20, 120, 100]</answer>", bbox=[40, 20, 120, 100])
    assert is_red(px[60, 50]) and tuple(px[60, 40]) == TRUE_RGB


def test_od_draws_every_answered_box():
    px = tile("od", '<answer>[{"bbox_2d": [50, 20, 120, 100], "label": "disc"}]</answer>',
              objects=[{"bbox": [40, 20, 120, 100], "label": "disc"}])
    assert is_red(px[60, 50]) and tuple(px[60, 40]) == TRUE_RGB


def test_point_draws_a_cross_at_the_answer():  # one point: `vlmr1 draw` dropped it before
    px = tile("point", "<answer>[90, 60]</answer>", mask=mask_to_rle(disc()))
    assert is_red(px[60, 90]) and is_red(px[60, 84])


def test_a_task_without_geometry_shows_the_image_text_and_rewards_only():
    px = tile("default", "<think>three</think><answer>3</answer>", solution="3")
    assert not (px[:H] == PRED_RGB).all(axis=-1).any()
    text_only = {k: v for k, v in row("default", images=0, solution="3").items()}
    drawn = np.asarray(draw_rollout_tile(Rollout(text_only, "<answer>3</answer>", {"accuracy": 1.0}, 1.0),
                                         Task()))
    assert drawn.shape[1] == 224 and (drawn == 255).mean() > 0.8  # a blank tile with its caption


def test_caption_has_total_each_reward_length_and_the_answer_clipped():
    caption = completion_caption(Rollout({}, "<think>long</think><answer>" + "x" * 500 + "</answer>",
                                         {"my_rewards:seg_iou": 0.5, "format": 1.0, "skipped": float("nan")}, 1.5,
                                         42), width=40)
    lines = caption.splitlines()
    assert lines[0] == "R 1.50 seg_iou 0.50 format 1.00 42 tok"
    assert "skipped" not in caption and "long" not in caption  # NaN rewards left out; the answer, not the thinking
    assert lines[-1].endswith("...") and all(len(line) <= 40 for line in lines)
    assert clip_lines("naïve 日本 \x07bell", 40, 1) == ["naïve ?? ?bell"]  # the bitmap font is Latin-1


def test_the_question_is_shown_without_the_tasks_template():
    from vlmr1.tasks import get_task

    seg = get_task("seg")
    r = row("seg")
    r["prompt"][0]["content"][1]["text"] = seg.format_question("Outline the red star.")
    assert question_text(r, seg) == "Outline the red star."


def test_grid_has_a_row_per_prompt_and_a_column_per_completion():
    prompts = [dict(row("default", solution="3"), id=f"p{k}", source=f"d.jsonl:{k}") for k in range(3)]
    rollouts = [Rollout(p, f"<answer>{g}</answer>", {"accuracy": float(g == 3)}, float(g == 3))
                for p in prompts for g in range(4)]
    assert [len(g) for g in group_by_prompt(rollouts)] == [4, 4, 4]
    grid = draw_rollouts(rollouts, num_prompts=2)
    assert grid.width == 5 * W + 6 * 4  # the prompt, then its 4 completions; tiles padded by 4 px
    assert H * 2 < grid.height < H * 3 + 200  # two prompts of three


def test_a_failing_overlay_still_gives_a_tile():
    class Broken(Task):
        name = "broken"

        def overlay(self, row, text):
            raise RuntimeError("user bug")

    r = row("broken")
    assert draw_rollout_tile(Rollout(r, "anything"), Broken()).width == W
    with pytest.raises(ValueError):
        draw_rollouts([])
    assert isinstance(Overlay(), Overlay)
