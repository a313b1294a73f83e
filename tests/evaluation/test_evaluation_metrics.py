"""Scoring and per-file aggregation without a model: hand-made predictions through the default task's hooks."""

from pathlib import Path

import pytest

from vlmr1.data.loading import build_dataset, load_sources, pair_sources
from vlmr1.evaluation import aggregate_by_file, score_predictions
from vlmr1.tasks import Task, get_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGES, COUNTING, TEXT_ONLY = EXAMPLES / "images", EXAMPLES / "counting.jsonl", EXAMPLES / "text_only.jsonl"


def rows_of(*files):
    task = get_task("default")
    data = load_sources(pair_sources(list(map(str, files)), [str(IMAGES)] * len(files)), task.name)
    dataset = build_dataset(data, task.format_question)
    return [dataset[i] for i in range(len(dataset))]


def answer(text):
    return f"<think>counting</think><answer>{text}</answer>"


def test_accuracy_and_parse_rate_per_file():
    rows = rows_of(COUNTING, TEXT_ONLY)
    counting = [r for r in rows if r["source"].startswith(str(COUNTING))]
    sums = [r for r in rows if r["source"].startswith(str(TEXT_ONLY))]
    assert len(counting) == 16 and len(sums) == 8
    # counting: 8 right, 4 wrong but well-formed, 4 unparsable -> accuracy 0.5, parse rate 0.75
    texts = ([answer(r["solution"]) for r in counting[:8]]
             + [answer(int(r["solution"]) + 1) for r in counting[8:12]]
             + ["I cannot tell"] * 4)
    # sums: 2 right of 8, all parsable ("$22$" is the math solution; "22" is equivalent)
    texts += [answer(r["solution"].strip("$")) for r in sums[:2]] + [answer("-1")] * 6
    predictions = score_predictions(get_task("default"), counting + sums, texts)
    metrics = aggregate_by_file(get_task("default"), predictions)
    assert list(metrics) == [str(COUNTING), str(TEXT_ONLY)]
    assert metrics[str(COUNTING)] == {"accuracy": 0.5, "parse_rate": 0.75, "num_samples": 16}
    assert metrics[str(TEXT_ONLY)] == {"accuracy": 0.25, "parse_rate": 1.0, "num_samples": 8}
    assert [p["prediction"] for p in predictions] == texts
    assert predictions[0]["metrics"] == {"accuracy": 1.0, "parsed": 1.0}


class Crashy(Task):
    name = "crashy"

    def sample_metrics(self, text, row):
        if "CRASH" in text:
            raise RuntimeError("parser bug")
        return super().sample_metrics(text, row)


def test_a_metric_hook_failure_counts_as_wrong_and_is_recorded(caplog):
    task = Crashy()
    rows = rows_of(COUNTING)[:4]
    texts = [answer(rows[0]["solution"]), answer(rows[1]["solution"]) + " CRASH", answer(rows[2]["solution"]), "x"]
    with caplog.at_level("WARNING"):
        predictions = score_predictions(task, rows, texts)
    assert f"{COUNTING}:2" in caplog.text and "parser bug" in caplog.text
    assert predictions[1]["metric_error"] == "RuntimeError: parser bug"
    assert predictions[1]["metrics"] == {"accuracy": 0.0, "parsed": 0.0}  # scored as an unparsable answer
    metrics = aggregate_by_file(task, predictions)[str(COUNTING)]
    assert metrics == {"accuracy": 0.5, "parse_rate": 0.5, "num_samples": 4, "num_metric_errors": 1}


def test_a_hook_that_always_raises_does_not_stop_the_eval():
    class Broken(Task):
        def sample_metrics(self, text, row):
            raise KeyError("bbox")

    task = Broken("broken")
    predictions = score_predictions(task, rows_of(COUNTING)[:3], ["a", "b", "c"])
    assert all(p["metrics"] is None and "KeyError" in p["metric_error"] for p in predictions)
    assert aggregate_by_file(task, predictions) == {str(COUNTING): {"num_samples": 3, "num_metric_errors": 3}}


def test_an_aggregation_failure_keeps_the_other_results(caplog):
    class BadAggregate(Task):
        def aggregate_metrics(self, samples):
            raise ZeroDivisionError("no boxes")

    task = BadAggregate("badagg")
    predictions = score_predictions(task, rows_of(COUNTING)[:2], ["a", "b"])
    metrics = aggregate_by_file(task, predictions)[str(COUNTING)]
    assert metrics == {"aggregate_error": "ZeroDivisionError: no boxes", "num_samples": 2}


def test_rows_and_texts_must_match():
    with pytest.raises(ValueError, match="2 rows but 1 predictions"):
        score_predictions(get_task("default"), rows_of(COUNTING)[:2], ["a"])
