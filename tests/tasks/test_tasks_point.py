"""``--task_type point``: the README's one-file task. Parsing, frame mapping, the reward against masks and boxes,
metrics, checks and the overlay, by hand-computed cases."""

import numpy as np
import pytest

from vlmr1.geometry import mask_to_rle
from vlmr1.rewards import get_reward_functions
from vlmr1.tasks import get_task
from vlmr1.tasks.point import parse_point, point_in_object_reward

MASK = np.zeros((100, 200), bool)
MASK[20:60, 50:150] = True  # x in [50, 150), y in [20, 60)
ROW = {"mask": mask_to_rle(MASK), "original_sizes": [[200, 100]], "frame_sizes": [[1000, 1000]]}


def reward(text, **row):
    return point_in_object_reward(completions=[text], **{k: [v] for k, v in row.items()})[0]


@pytest.mark.parametrize("text, point", [("[3, 4]", [3, 4]), ('{"point_2d": [3.5, 4]}', [3.5, 4]),
                                         ('[{"point_2d": [1, 2], "label": "dog"}]', [1, 2]),
                                         ("```json\n[7, 8]\n```", [7, 8])])
def test_parse_point(text, point):
    assert parse_point(text) == point


@pytest.mark.parametrize("text", ["", "[1, 2, 3]", "[NaN, 1]", '{"point": [true, 1]}', "left", "[" * 5000])
def test_junk_is_not_a_point(text):
    assert parse_point(text) is None


def test_template_and_defaults():
    task = get_task("point")
    assert task.format_question("<image>the dog").startswith("<image>Point to the dog.")
    assert [f.__name__ for f in get_reward_functions(list(task.default_rewards))] == ["point_in_object", "format"]


def test_points_are_mapped_from_the_frame_and_tested_against_the_mask():
    # 0-1000 grid over 200x100: [500, 400] -> (100, 40), inside; [100, 400] -> (20, 40), outside
    assert reward("<answer>[500, 400]</answer>", **ROW) == 1.0
    assert reward("<answer>[100, 400]</answer>", **ROW) == 0.0
    # the pixel edge: x = 149.99 is in the last column, 150 is outside; read as original pixels without a frame
    assert reward("<answer>[149.99, 30]</answer>", mask=ROW["mask"]) == 1.0
    assert reward("<answer>[150, 30]</answer>", mask=ROW["mask"]) == 0.0


def test_a_box_is_the_truth_when_there_is_no_mask():
    row = {"bbox": [50, 20, 150, 60], "original_sizes": [[200, 100]]}
    assert reward("<answer>[60, 25]</answer>", **row) == 1.0 and reward("<answer>[160, 25]</answer>", **row) == 0.0
    assert reward("<answer>[60, 25]</answer>") == 0.0  # no truth at all: 0, never raises


def test_metrics_checks_and_overlay():
    task = get_task("point")
    samples = [task.sample_metrics(t, ROW) for t in ("<answer>[500, 400]</answer>", "<answer>[0, 0]</answer>", "?")]
    assert task.aggregate_metrics(samples) == {"accuracy": pytest.approx(1 / 3), "parse_rate": pytest.approx(2 / 3)}
    assert task.check_row("", {"mask": ROW["mask"]}) == []
    assert [k for k, _ in task.check_row("", {"bbox": [5, 5, 1, 1]})] == ["bad_field"]
    overlay = task.overlay(ROW, "<answer>[500, 400]</answer>")
    assert overlay.answer_points == [[100.0, 40.0]] and overlay.score == 1.0 and overlay.true_mask.sum() == MASK.sum()
    assert task.overlay(ROW, "no point").score is None
