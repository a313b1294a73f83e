"""Two GRPO steps of the tiny Qwen2.5-VL per task (rec, od, gui) through ``vlmr1.train.main``, as a user runs it.

The rec/od data are a few generated images with coloured boxes; gui uses the shipped examples/gui pairs. A spy reward
(``test_training_tasks:spy``) records the columns TRL hands to the rewards, to check the box ground truth and the
coordinate frame arrive as the REC/OD rewards expect.
"""

import json
from pathlib import Path

from PIL import Image, ImageDraw

from vlmr1.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
SEEN: list[dict] = []  # kwargs of every spy call
IMAGE_SIZE = (200, 150)
# smart_resize of 200x150 under --max_pixels 12544 with 28-px factors: beta = sqrt(30000/12544) ~ 1.546,
# w = floor(200/1.546/28)*28 = 112, h = floor(150/1.546/28)*28 = 84.
FRAME_SIZE = [112, 84]
BOXES = [([20, 30, 90, 100], "red box", (220, 40, 40)), ([110, 20, 180, 70], "blue box", (40, 80, 220))]


def spy(completions, **kwargs):
    """A reward that records what it was given and scores 0."""
    SEEN.append(kwargs)
    return [0.0] * len(completions)


def train(model_dir, output_dir, data_file, image_folder, task_type, rewards=None, steps=2):
    argv = [
        "--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--task_type", task_type,
        "--data_file_paths", str(data_file), "--image_folders", str(image_folder),
        "--max_steps", str(steps), "--per_device_train_batch_size", "4", "--num_generations", "2",
        "--max_completion_length", "12", "--learning_rate", "1e-2", "--logging_steps", "1", "--save_steps", "1",
        "--gradient_checkpointing", "false", "--report_to", "none", "--max_pixels", "12544", "--seed", "0",
        "--temperature", "1.5",
    ] + (["--reward_funcs", *rewards] if rewards else [])
    train_main(argv)
    return json.loads((Path(output_dir) / f"checkpoint-{steps}" / "trainer_state.json").read_text())


def logged_rewards(state, steps=2):
    assert state["global_step"] == steps
    logs = [h for h in state["log_history"] if "loss" in h]
    assert len(logs) == steps
    return {k.split("/")[1] for h in logs for k in h if k.startswith("rewards/") and k.endswith("/mean")}


def write_box_data(folder: Path, task_type: str) -> Path:
    """Four lines of rec or od data over generated 200x150 images with two coloured boxes each."""
    folder.mkdir()
    lines = []
    for i in range(4):
        img = Image.new("RGB", IMAGE_SIZE, (245, 245, 245))
        draw = ImageDraw.Draw(img)
        shift = 5 * i
        boxes = [([b[0] + shift, b[1], b[2] + shift, b[3]], label) for b, label, _ in BOXES]
        for (box, _), (_, _, colour) in zip(boxes, BOXES):
            draw.rectangle(box, fill=colour)
        img.save(folder / f"img_{i}.png")
        if task_type == "rec":
            box, label = boxes[i % 2]
            extra = {"bbox": box}
            question, answer = f"<image>the {label}", json.dumps(box)
        else:
            extra = {"objects": [{"bbox": b, "label": label} for b, label in boxes]}
            question = "<image>red box, blue box"
            answer = json.dumps([{"bbox_2d": b, "label": label} for b, label in boxes])
        lines.append({"id": f"{task_type}-{i}", "image": f"img_{i}.png", **extra,
                      "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]})
    path = folder / f"{task_type}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_rec_task_trains_and_rewards_see_boxes_and_frames(tiny_qwen25vl_dir, tmp_path):
    SEEN.clear()
    data = write_box_data(tmp_path / "rec", "rec")
    state = train(tiny_qwen25vl_dir, tmp_path / "run", data, tmp_path / "rec", "rec",
                  rewards=["rec_iou", "rec_accuracy", "format", "user_rewards:text_length", "test_training_tasks:spy"])
    assert {"rec_iou", "rec_accuracy", "format"} <= logged_rewards(state)
    assert SEEN and all(kw["task_type"] == ["rec"] * 4 for kw in SEEN)
    for kw in SEEN:
        assert kw["original_sizes"] == [[list(IMAGE_SIZE)]] * 4
        assert kw["frame_sizes"] == [[FRAME_SIZE]] * 4
        assert all(len(b) == 4 for b in kw["bbox"])


def test_od_task_trains_with_the_detection_rewards(tiny_qwen25vl_dir, tmp_path):
    SEEN.clear()
    data = write_box_data(tmp_path / "od", "od")
    state = train(tiny_qwen25vl_dir, tmp_path / "run", data, tmp_path / "od", "od",
                  rewards=["od_length", "od_ap", "od_ap50", "format", "user_rewards:text_length",
                           "test_training_tasks:spy"])
    assert {"od_length", "od_ap", "od_ap50", "format"} <= logged_rewards(state)
    assert all(len(objects) == 2 and objects[0]["label"] == "red box" for kw in SEEN for objects in kw["objects"])
    assert all(kw["frame_sizes"] == [[FRAME_SIZE]] * 4 for kw in SEEN)


def test_gui_task_trains_on_the_shipped_examples_with_default_rewards(tiny_qwen25vl_dir, tmp_path):
    examples = ROOT / "examples" / "gui"
    state = train(tiny_qwen25vl_dir, tmp_path / "run", examples / "gui_synthetic.jsonl", examples, "gui")
    assert logged_rewards(state) == {"accuracy", "format"}  # the gui task's defaults


def test_a_users_own_task_trains_from_outside_the_package(tiny_qwen25vl_dir, tmp_path, monkeypatch):
    # examples/my_tasks.py, named as a user names it: module:Class from the working directory
    monkeypatch.chdir(ROOT / "examples")
    state = train(tiny_qwen25vl_dir, tmp_path / "run", ROOT / "examples" / "counting.jsonl", ROOT / "examples" / "images",
                  "my_tasks:Counting")
    assert logged_rewards(state) == {"count_closeness", "format"}  # the task's own defaults and reward
