"""When rollout pictures are drawn: every N steps, or (unset) at logging steps within the drawing budget, or never."""

import pytest
from PIL import Image
from transformers import TrainerControl

from vlmr1.tasks import get_task
from vlmr1.training import rollouts
from vlmr1.training.rollouts import RolloutPictures, picture_path

ROWS = [{"id": f"p{k}", "source": f"d.jsonl:{k}", "task_type": "default", "solution": "3",
         "images": [Image.new("RGB", (56, 42), (120, 120, 120))],
         "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}]}
        for k in (0, 0, 1, 1)]
COMPLETIONS = [[{"role": "assistant", "content": f"<think>hm</think><answer>{k}</answer>"}] for k in (3, 2, 3, 1)]


class State:
    is_world_process_zero = True

    def __init__(self, step, max_steps=None):
        self.global_step, self.max_steps = step, max_steps


def run(tmp_path, every, logging_steps=1, steps=4, budget=0.01):
    pictures = RolloutPictures(str(tmp_path), every, num_prompts=2, task=get_task("default"), budget=budget)
    pictures.on_train_begin(None, State(0, steps), TrainerControl())
    for step in range(1, steps + 1):
        pictures.capture(ROWS, COMPLETIONS, [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, float("nan")]],
                         ["accuracy", "format"], [1.0, 1.0], [7, 7, 7, 9])
        control = TrainerControl(should_log=step % logging_steps == 0)
        pictures.on_step_end(None, State(step), control)
        pictures.on_step_end(None, State(step), control)  # a second call must not draw the same step twice
        pictures.wait()  # as if a training step took longer than a drawing
    pictures.on_train_end(None, State(steps), TrainerControl())
    drawn = sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "rollouts").glob("step-*.png"))
    return pictures, drawn


def test_every_n_steps(tmp_path):
    pictures, drawn = run(tmp_path, every=2, steps=5)
    assert drawn == [2, 4] and [p.step for p in pictures.sent] == [2, 4]
    with Image.open(picture_path(str(tmp_path), 2)) as image:
        assert image.width == 3 * 224 + 4 * 4  # the prompt and its 2 completions per row


def test_unset_draws_at_logging_steps_while_within_the_budget(tmp_path):
    _, drawn = run(tmp_path / "a", every=None, logging_steps=2, budget=1.0)
    assert drawn == [2, 4]
    pictures, drawn = run(tmp_path / "b", every=None, budget=0.0)  # no budget: the first picture only
    assert drawn == [1] and pictures.skipped == 3 and pictures.cpu_seconds > 0



def test_unset_draws_about_100_pictures_per_run(tmp_path, monkeypatch):
    monkeypatch.setattr(rollouts, "MAX_PICTURES", 2)  # as 100 pictures of a 300-step run: every third step
    _, drawn = run(tmp_path, every=None, steps=6, budget=1.0)
    assert drawn == [1, 4]


def test_zero_never_draws(tmp_path):
    pictures, _ = run(tmp_path, every=0)
    assert not pictures.enabled and not (tmp_path / "rollouts").exists()


def test_the_total_is_the_weighted_sum_without_missing_rewards(tmp_path):
    pictures = RolloutPictures(str(tmp_path))
    pictures.capture(ROWS, COMPLETIONS, [[1.0, 0.5]] * 3 + [[0.0, float("nan")]], ["a", "b"], [2.0, 1.0], None)
    assert [r.total for r in pictures.latest] == [2.5, 2.5, 2.5, 0.0]
    assert pictures.latest[0].text == "<think>hm</think><answer>3</answer>"
    assert pictures.latest[3].rewards["a"] == 0.0 and pictures.latest[3].num_tokens is None
    assert pytest.approx(pictures.budget) == 0.01
