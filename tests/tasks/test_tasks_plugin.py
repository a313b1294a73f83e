"""The task as the single plug-in: built-in discovery, a user's task from outside the package (rewards, data check,
drawing and eval metrics all follow it), and picking the task of a row by its truth and answer."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmr1.data.check import check_sources
from vlmr1.data.loading import SourceFile
from vlmr1.evaluation import aggregate_by_file, score_predictions
from vlmr1.geometry import mask_to_rle
from vlmr1.rewards import get_reward_function, list_rewards
from vlmr1.tasks import TASKS, Task, get_task, task_for_row
from vlmr1.viz.draw import PRED_RGB, TRUE_RGB, render_row

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.chdir(EXAMPLES)  # `my_tasks` is found in the working directory, as for a user
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != EXAMPLES])
    yield get_task("my_tasks:Counting")
    TASKS.pop("counting", None)
    sys.modules.pop("my_tasks", None)


def test_every_task_module_is_registered_with_its_rewards():
    get_task("default")  # the first lookup loads every module of vlmr1.tasks
    assert {"default", "rec", "seg", "seg_radial", "seg_demo", "od", "gui", "point"} <= set(TASKS)
    for name in ("rec_iou", "seg_iou", "od_ap", "point_in_object"):
        assert name in list_rewards() and get_reward_function(name).__name__ == name


def test_a_users_task_loads_with_its_reward_checks_and_metrics(counting, tmp_path):
    assert isinstance(counting, Task) and counting.name == "counting" and get_task("counting") is counting
    reward = get_reward_function("count_closeness")
    assert reward(completions=["<answer>4</answer>", "<answer>3</answer>", "no"], solution=["4", "4", "4"]) == [
        1.0, 0.5, 0.0]
    data = tmp_path / "d.jsonl"
    line = {"image": "shapes_00.png", "conversations": [{"from": "human", "value": "<image>How many?"},
                                                        {"from": "gpt", "value": "3"}]}
    data.write_text(json.dumps(line) + "\n" + json.dumps({**line, "conversations": [
        line["conversations"][0], {"from": "gpt", "value": "a few"}]}) + "\n")
    report = check_sources([SourceFile(str(data), str(EXAMPLES / "images"))], "my_tasks:Counting")
    assert [(p.line, p.kind) for p in report.problems] == [(2, "unparsable_answer")]
    rows = [{"id": "a", "source": f"{data}:1", "solution": "3"}, {"id": "b", "source": f"{data}:2", "solution": "3"}]
    metrics = aggregate_by_file(counting, score_predictions(counting, rows, ["<answer>3</answer>", "<answer>2</answer>"]))
    assert metrics[str(data)] == {"exact": 0.5, "closeness": pytest.approx((1 + 1 / 3) / 2), "parse_rate": 1.0,
                                  "num_samples": 2}


def test_unknown_and_broken_task_specs_say_what_to_do():
    with pytest.raises(ValueError, match="choose one of .*rec.*package.module:TaskClass"):
        get_task("recc")
    with pytest.raises(ValueError, match="cannot load 'Nope' from 'vlmr1.tasks.rec'"):
        get_task("vlmr1.tasks.rec:Nope")
    with pytest.raises(ValueError, match="must be a vlmr1.tasks.Task"):
        get_task("vlmr1.tasks.rec:parse_box")


def test_the_task_of_a_row_is_the_one_holding_its_truth_and_reading_its_answer():
    mask = mask_to_rle(np.ones((4, 4), bool))
    contour = json.dumps({"x": [2, 1, 0, 0, 0, 0, 0, 0], "y": [2, 0, 1, 0, 0, 0, 0, 0]})
    coco_line = {"mask": mask, "bbox": [0, 0, 4, 4]}
    assert task_for_row(coco_line, contour).name == "seg"  # has a bbox too, but the answer is a contour
    assert task_for_row({"bbox": [0, 0, 4, 4]}, "[0, 0, 4, 4]").name == "rec"
    assert task_for_row({"objects": []}, "[]").name == "od"
    assert task_for_row({}, "yes").name == "default"


def test_draw_follows_the_lines_task(tmp_path):
    image = Image.new("RGB", (40, 30), (128, 128, 128))
    row = {"id": 1, "bbox": [10, 10, 30, 20], "task_type": "point", "prediction": "<answer>[20, 15]</answer>",
           "original_sizes": [[40, 30]], "frame_sizes": [[40, 30]]}
    drawn, score = render_row(row, image, predictions=True)
    assert score == 1.0 and drawn.width == 40
    assert tuple(np.asarray(drawn)[15, 20]) == PRED_RGB and tuple(np.asarray(drawn)[10, 10]) == TRUE_RGB
    _, miss = render_row({**row, "prediction": "<answer>[2, 2]</answer>"}, image, predictions=True)
    assert miss == 0.0
