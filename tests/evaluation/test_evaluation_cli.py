"""``vlmr1 eval`` end to end on the tiny Qwen2.5-VL: the three output files, --num_samples, torchrun, bad input."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlmr1.data.schema import DataError
from vlmr1.eval import main as eval_main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGES, COUNTING, TEXT_ONLY = EXAMPLES / "images", EXAMPLES / "counting.jsonl", EXAMPLES / "text_only.jsonl"


def argv(model_dir, output_dir, files=(COUNTING, TEXT_ONLY), *extra):
    return ["--model", str(model_dir), "--data_file_paths", ":".join(map(str, files)),
            "--image_folders", ":".join([str(IMAGES)] * len(files)), "--output_dir", str(output_dir),
            "--max_new_tokens", "6", "--batch_size", "4", "--dtype", "float32", *extra]


def read_outputs(output_dir):
    metrics = json.loads((output_dir / "metrics.json").read_text())
    predictions = [json.loads(line) for line in (output_dir / "predictions.jsonl").read_text().splitlines()]
    report = (output_dir / "report.md").read_text()
    return metrics, predictions, report


def file_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def full_run(tiny_qwen25vl_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "out"
    returned = eval_main(argv(tiny_qwen25vl_dir, out))
    return returned, out


def test_two_files_give_two_metric_entries_and_three_files(full_run, tiny_qwen25vl_dir):
    returned, out = full_run
    metrics, predictions, report = read_outputs(out)
    assert list(metrics["metrics"]) == [str(COUNTING), str(TEXT_ONLY)] == list(returned)
    assert metrics["metrics"][str(COUNTING)]["num_samples"] == 16
    assert metrics["metrics"][str(TEXT_ONLY)]["num_samples"] == 8
    assert {"accuracy", "parse_rate"} <= set(metrics["metrics"][str(COUNTING)])
    assert metrics["model"] == str(tiny_qwen25vl_dir) and metrics["task"] == "default"
    assert metrics["settings"]["max_new_tokens"] == 6 and metrics["settings"]["world_size"] == 1
    assert f"## {COUNTING}" in report and f"## {TEXT_ONLY}" in report and "| accuracy |" in report
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_predictions_keep_the_original_lines(full_run):
    _, out = full_run
    _, predictions, _ = read_outputs(out)
    originals = file_lines(COUNTING) + file_lines(TEXT_ONLY)
    assert len(predictions) == len(originals) == 24
    for k, (p, original) in enumerate(zip(predictions, originals)):
        assert {key: p[key] for key in original} == original  # id, image, conversations, extra fields
        file, line = (COUNTING, k + 1) if k < 16 else (TEXT_ONLY, k - 15)
        assert p["source"] == f"{file}:{line}" and p["image_folder"] == str(IMAGES)
        assert isinstance(p["prediction"], str) and set(p["metrics"]) == {"accuracy", "parsed"}
        if "image" in p:  # what `vlmr1 draw --predictions` opens
            assert os.path.isfile(os.path.join(p["image_folder"], p["image"]))
    # the per-file metrics are the aggregate of the per-sample ones
    metrics, _, _ = read_outputs(out)
    counting = [p["metrics"]["accuracy"] for p in predictions[:16]]
    assert metrics["metrics"][str(COUNTING)]["accuracy"] == pytest.approx(sum(counting) / 16)


def test_num_samples_takes_the_first_lines_of_each_file(tiny_qwen25vl_dir, tmp_path, full_run):
    out = tmp_path / "out"
    eval_main(argv(tiny_qwen25vl_dir, out, (COUNTING, TEXT_ONLY), "--num_samples", "3"))
    metrics, predictions, _ = read_outputs(out)
    assert [m["num_samples"] for m in metrics["metrics"].values()] == [3, 3]
    assert [p["source"] for p in predictions] == [f"{f}:{n}" for f in (COUNTING, TEXT_ONLY) for n in (1, 2, 3)]
    # greedy: the same samples give the same completions as in the full run, whatever the batch
    _, full, _ = read_outputs(full_run[1])
    by_source = {p["source"]: p["prediction"] for p in full}
    assert all(p["prediction"] == by_source[p["source"]] for p in predictions)


# two fresh interpreters (~15 s): data-parallel eval is part of the contract
@pytest.mark.slow  # torchrun on 2 CPU processes: `make test-slow`
def test_torchrun_shards_and_rank0_writes_the_same_results(tiny_qwen25vl_dir, tmp_path, full_run):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vlmr1.eval", *argv(tiny_qwen25vl_dir, out, (COUNTING, TEXT_ONLY), "--num_samples", "5")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics, predictions, _ = read_outputs(out)
    assert metrics["settings"]["world_size"] == 2
    assert [p["source"] for p in predictions] == [f"{f}:{n}" for f in (COUNTING, TEXT_ONLY) for n in range(1, 6)]
    _, full, _ = read_outputs(full_run[1])
    by_source = {p["source"]: p["prediction"] for p in full}
    assert all(p["prediction"] == by_source[p["source"]] for p in predictions)


@pytest.fixture
def no_model_loading(monkeypatch):
    """Fail the test if the eval gets as far as opening the checkpoint."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model or processor was loaded before the data was checked")

    monkeypatch.setattr("vlmr1.models.loading.load_processor", refuse)


def test_bad_line_stops_before_the_model_loads(tiny_qwen25vl_dir, tmp_path, no_model_loading):
    bad = tmp_path / "bad.jsonl"
    lines = COUNTING.read_text().splitlines()
    bad.write_text(lines[0] + "\n" + '{"id": 2, "image": "shapes_01.png", "conversations": [}\n')
    with pytest.raises(DataError, match=f"{bad}:2: bad_json: not valid JSON"):
        eval_main(argv(tiny_qwen25vl_dir, tmp_path / "out", (bad,)))
    assert not (tmp_path / "out").exists()


def test_missing_image_stops_before_the_model_loads(tiny_qwen25vl_dir, tmp_path, no_model_loading):
    data = tmp_path / "missing.jsonl"
    row = json.loads(COUNTING.read_text().splitlines()[0])
    data.write_text(json.dumps(row) + "\n" + json.dumps({**row, "image": "nope.png"}) + "\n")
    with pytest.raises(DataError, match=f"{data}:2: .*nope.png: image file not found"):
        eval_main(argv(tiny_qwen25vl_dir, tmp_path / "out", (data,)))


def test_checkpoint_without_processor_says_so(tiny_qwen25vl_dir, tmp_path):
    bare = tmp_path / "weights_only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_qwen25vl_dir / name, bare)
    with pytest.raises(ValueError, match="has no processor"):
        eval_main(argv(bare, tmp_path / "out", (COUNTING,)))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_use_vllm_without_vllm_says_how_to_install(tiny_qwen25vl_dir, tmp_path):
    with pytest.raises(ImportError, match=r"pip install 'vlmr1\[vllm\]'"):
        eval_main(argv(tiny_qwen25vl_dir, tmp_path / "out", (COUNTING,), "--use_vllm"))


def test_flags_are_checked(tiny_qwen25vl_dir, tmp_path):
    with pytest.raises(ValueError, match="--num_samples: bad_argument: must be at least 1"):
        eval_main(argv(tiny_qwen25vl_dir, tmp_path / "out", (COUNTING,), "--num_samples", "0"))
