"""``vlmr1 data gui-synthetic``: deterministic, balanced screenshot pairs that the data layer and rewards accept."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from vlmr1.data.gui_synthetic import DEFECT_CLASSES, NO_RESPONSE, SIZE, main
from vlmr1.data.loading import SourceFile, load_sources
from vlmr1.rewards import REWARD_REGISTRY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gui"


def rows_of(folder):
    return [json.loads(line) for line in (Path(folder) / "gui_synthetic.jsonl").read_text().splitlines()]


def pixels(folder, name):
    return np.asarray(Image.open(Path(folder) / name).convert("RGB"))


def test_generated_rows_are_balanced_and_well_formed(tmp_path):
    path = main(["--output_dir", str(tmp_path), "--num", "10", "--seed", "3"])
    assert path == str(tmp_path / "gui_synthetic.jsonl")
    rows = rows_of(tmp_path)
    assert len(rows) == 10
    assert Counter(r["conversations"][1]["value"] for r in rows) == {c: 2 for c in DEFECT_CLASSES}
    for r in rows:
        assert r["accu_reward_method"] == "all_match" and len(r["image"]) == 2
        question = r["conversations"][0]["value"]
        assert question.startswith("<image><image>") and f"[{r['action']}]" in question
        before, after = (pixels(tmp_path, p) for p in r["image"])
        assert before.shape == (SIZE[1], SIZE[0], 3)
        # "no response" means the screen did not change at all; every other class shows a change.
        assert np.array_equal(before, after) == (r["conversations"][1]["value"] == NO_RESPONSE)
    data = load_sources([SourceFile(path, str(tmp_path))], task_type="gui")
    assert len(data) == 10 and set(data.rows["accu_reward_method"]) == {"all_match"}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    main(["--output_dir", str(a), "--num", "6", "--seed", "1"])
    main(["--output_dir", str(b), "--num", "6", "--seed", "1"])
    main(["--output_dir", str(c), "--num", "6", "--seed", "2"])
    assert rows_of(a) == rows_of(b) and rows_of(a) != rows_of(c)
    for r in rows_of(a):
        for name in r["image"]:
            assert (a / name).read_bytes() == (b / name).read_bytes()


def test_shipped_example_matches_the_generator_and_stays_small(tmp_path):
    # examples/gui was written by: vlmr1 data gui-synthetic --output_dir examples/gui --num 10 --seed 0
    main(["--output_dir", str(tmp_path), "--num", "10", "--seed", "0"])
    assert rows_of(EXAMPLES) == rows_of(tmp_path)
    assert all((EXAMPLES / name).is_file() for r in rows_of(EXAMPLES) for name in r["image"])
    assert sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file()) < 300_000


def test_gold_answers_score_one_with_the_accuracy_reward():
    rows = rows_of(EXAMPLES)
    golds = [r["conversations"][1]["value"] for r in rows]
    completions = [f"<think>compare</think><answer>{g.lower()}</answer>" for g in golds]
    out = REWARD_REGISTRY["accuracy"](completions=completions, solution=golds,
                                      accu_reward_method=[r["accu_reward_method"] for r in rows])
    assert out == [1.0] * len(rows)
    wrong = REWARD_REGISTRY["accuracy"](completions=["<answer>No Defect</answer>"], solution=[NO_RESPONSE],
                                        accu_reward_method=["all_match"])
    assert wrong == [0.0]
