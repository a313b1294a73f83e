"""The ``gui`` task: the template lists the defect classes; accuracy with all_match scores the answers."""

from vlmr1.data.gui_synthetic import DEFECT_CLASSES
from vlmr1.rewards import REWARD_REGISTRY
from vlmr1.tasks import get_task


def test_template_lists_every_class_and_keeps_both_images_first():
    task = get_task("gui")
    text = task.format_question("<image><image>The first screenshot ...")
    assert text.startswith("<image><image>The first screenshot")
    assert all(c in text for c in DEFECT_CLASSES) and "No Defect" in text
    assert task.default_rewards == ("accuracy", "format")


def test_all_match_scoring_of_classes():
    task = get_task("gui")
    row = dict(solution="Navigation Logic Error", accu_reward_method="all_match")
    assert task.sample_metrics("<think>t</think><answer>navigation  logic error</answer>", row) == {
        "accuracy": 1.0, "parsed": 1.0}
    assert task.sample_metrics("<answer>Navigation Logic Error.</answer>", row)["accuracy"] == 1.0  # as VLM-R1
    assert task.sample_metrics("<answer>Navigation Logic Error!</answer>", row)["accuracy"] == 0.0  # exact class
    assert task.sample_metrics("Unexpected Task Result", row) == {"accuracy": 0.0, "parsed": 0.0}
    completions = ["<answer>No Defect</answer>", "<answer>Operation No Response</answer>"]
    out = REWARD_REGISTRY["accuracy"](completions=completions, solution=["No Defect", "No Defect"],
                                      accu_reward_method=["all_match"] * 2)
    assert out == [1.0, 0.0]
    metrics = task.aggregate_metrics([task.sample_metrics("<answer>navigation logic error</answer>", row),
                                      task.sample_metrics("<answer>No Defect</answer>", row)])
    assert metrics == {"accuracy": 0.5, "parse_rate": 1.0}
