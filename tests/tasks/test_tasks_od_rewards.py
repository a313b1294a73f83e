"""OD rewards: hand-computed AP cases and agreement with pycocotools' COCOeval run directly on the same data."""

import contextlib
import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vlmr1.geometry import coco_average_precision
from vlmr1.tasks.od import od_ap50_reward as od_ap50
from vlmr1.tasks.od import od_ap_reward as od_ap
from vlmr1.tasks.od import od_length_reward as od_length
from vlmr1.tasks.od import od_scores, parse_detections

SIZE = dict(original_sizes=[[200, 100]], frame_sizes=[[200, 100]])


def score(fn, dets, objects, **sizes):
    text = dets if isinstance(dets, str) else f"<think>t</think><answer>{json.dumps(dets)}</answer>"
    return fn(prompts=["p"], completions=[text], completion_ids=[[0]], trainer_state=None, log_extra=None,
              log_metric=None, objects=[objects], **{k: [v] for k, v in (sizes or SIZE).items()})[0]


def det(box, label, **extra):
    return {"bbox_2d": box, "label": label, **extra}


def gt(box, label):
    return {"bbox": box, "label": label}


DOG, CAT = [10, 10, 60, 60], [100, 20, 180, 90]


def test_parse_detections_forms():
    assert parse_detections('[{"bbox_2d": [1, 2, 3, 4], "label": "dog", "score": 0.5}]') == [
        {"bbox": [1, 2, 3, 4], "label": "dog", "score": 0.5}]
    assert parse_detections('```json\n{"bbox_2d": [1, 2, 3, 4], "label": "dog"}\n```') == [
        {"bbox": [1, 2, 3, 4], "label": "dog", "score": 1.0}]
    assert parse_detections("[]") == []
    assert parse_detections('[{"bbox_2d": [1, 2, 3], "label": "dog", "score": "high"}, 7]') == [
        {"bbox": None, "label": "dog", "score": 1.0}, {"bbox": None, "label": None, "score": 1.0}]
    for junk in ("", "a dog", "[1, 2", '"dog"', "[" * 50_000):
        assert parse_detections(junk) is None


def test_perfect_none_unparsable_and_wrong_label():
    objects = [gt(DOG, "dog"), gt(CAT, "cat")]
    perfect = [det(DOG, "Dog"), det(CAT, " cat ")]  # labels match after normalisation
    for fn in (od_ap, od_ap50, od_length):
        assert score(fn, perfect, objects) == pytest.approx(1.0)
        assert score(fn, [], objects) == 0.0
        assert score(fn, "<answer>I see a dog</answer>", objects) == 0.0
        assert score(fn, [det(DOG, "cat"), det(CAT, "dog")], objects) == 0.0  # right boxes, swapped labels


def test_half_the_objects_found():
    # Two labels, one found perfectly: AP(dog) = 1, AP(cat) = 0 -> mean over ground-truth labels 0.5.
    assert score(od_ap, [det(DOG, "dog")], [gt(DOG, "dog"), gt(CAT, "cat")]) == pytest.approx(0.5)
    # One label, one of two objects: precision 1 up to recall 0.5, so 51 of COCO's 101 recall points -> 51/101.
    two_dogs = [gt(DOG, "dog"), gt(CAT, "dog")]
    assert score(od_ap, [det(DOG, "dog")], two_dogs) == pytest.approx(51 / 101)
    assert score(od_ap50, [det(DOG, "dog")], two_dogs) == pytest.approx(51 / 101)


def test_iou_thresholds_hand_computed():
    # IoU 0.72 passes the thresholds .50 .55 .60 .65 .70 of ten -> AP 0.5, AP50 1.
    objects = [gt([0, 0, 100, 100], "box")]
    assert score(od_ap, [det([0, 0, 100, 72], "box")], objects) == pytest.approx(0.5)
    assert score(od_ap50, [det([0, 0, 100, 72], "box")], objects) == pytest.approx(1.0)


def test_frame_mapping_like_rec():
    # 0-1000 grid over a 200x100 image: [50, 100, 300, 600] -> [10, 10, 60, 60].
    sizes = dict(original_sizes=[[200, 100]], frame_sizes=[[1000, 1000]])
    assert score(od_ap, [det([50, 100, 300, 600], "dog")], [gt(DOG, "dog")], **sizes) == pytest.approx(1.0)


def test_length_penalty():
    # An extra guess after the right box leaves AP at 1 but halves od_length (1 gt / 2 predictions).
    dets = [det(DOG, "dog"), det(CAT, "dog")]
    assert score(od_ap, dets, [gt(DOG, "dog")]) == pytest.approx(1.0)
    assert score(od_length, dets, [gt(DOG, "dog")]) == pytest.approx(0.5)
    assert score(od_length, [det(DOG, "dog")], [gt(DOG, "dog"), gt(CAT, "cat")]) == pytest.approx(0.5)


@pytest.mark.parametrize("bad_box", [[60, 60, 10, 10], [10, 10, 10, 60], [0, 0, 1e9, 1e9], [0, 0, "x", 5]])
def test_invalid_boxes_are_false_positives_not_ignored(bad_box):
    # Listed first with the same score, the bad box ranks above the right one: precision 1/2 at recall 1.
    assert score(od_ap, [det(bad_box, "dog"), det(DOG, "dog")], [gt(DOG, "dog")]) == pytest.approx(0.5)


def test_scores_order_the_detections():
    wrong, right = det(CAT, "dog", score=0.3), det(DOG, "dog", score=0.9)
    assert score(od_ap, [wrong, right], [gt(DOG, "dog")]) == pytest.approx(1.0)
    assert score(od_ap, [det(CAT, "dog"), det(DOG, "dog")], [gt(DOG, "dog")]) == pytest.approx(0.5)


def test_predicted_labels_outside_the_ground_truth_are_ignored():
    assert score(od_ap, [det(CAT, "zebra"), det(DOG, "dog")], [gt(DOG, "dog")]) == pytest.approx(1.0)


def test_no_ground_truth_objects():
    assert score(od_ap, [], []) == 1.0
    assert score(od_ap, [det(DOG, "dog")], []) == 0.0
    assert score(od_length, "<answer>nothing</answer>", []) == 0.0


def test_bad_rows_score_zero():
    for objects in ([{"bbox": [1, 2], "label": "x"}], [{"bbox": [0, 0, 5, 5]}], "dog", [3]):
        assert score(od_ap, [det(DOG, "dog")], objects) == 0.0
    assert od_ap(completions=["[]"]) == [0.0]  # not an OD row


def random_file(seed, n_images=6):
    """Ground truth and predictions for a few images, as (xyxy, label[, score]) lists."""
    rng = np.random.default_rng(seed)
    labels = ["dog", "cat", "car"]
    gts, preds = [], []
    for _ in range(n_images):
        objs = []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(5, 60, 2)
            objs.append(([x, y, x + w, y + h], str(rng.choice(labels))))
        dets = []
        for box, label in objs:  # jittered true boxes, sometimes mislabelled, plus random false positives
            if rng.random() < 0.8:
                x1, y1, x2, y2 = (b + j for b, j in zip(box, rng.normal(0, 4, 4)))
                # Valid boxes only: loadRes would give an inverted box a negative area, which COCOeval then
                # ignores instead of counting it wrong (our rewards count it as a false positive on purpose).
                dets.append(([min(x1, x2), min(y1, y2), max(x1, x2) + 1, max(y1, y2) + 1],
                             label if rng.random() < 0.8 else str(rng.choice(labels)), float(rng.uniform(0.1, 1))))
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 150, 2)
            dets.append(([x, y, x + 30, y + 30], str(rng.choice(labels)), float(rng.uniform(0, 1))))
        gts.append(objs)
        preds.append(dets)
    return gts, preds


def direct_cocoeval(gts, preds):
    """pycocotools used the documented way: a GT COCO object, loadRes for detections, default parameters."""
    labels = sorted({label for objs in gts for _, label in objs} | {d[1] for dets in preds for d in dets})
    cat = {label: i + 1 for i, label in enumerate(labels)}
    anns = []
    for i, objs in enumerate(gts):
        for b, label in objs:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat[label], "iscrowd": 0,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
    results = [{"image_id": i + 1, "category_id": cat[label], "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": s} for i, dets in enumerate(preds) for b, label, s in dets]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": [{"id": i + 1} for i in range(len(gts))],
                           "categories": [{"id": c, "name": n} for n, c in cat.items()], "annotations": anns}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else COCO()
        if not results:
            coco_dt.dataset = {"images": coco_gt.dataset["images"], "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[0], evaluator.stats[1]


@pytest.mark.parametrize("seed", range(6))
def test_file_level_ap_equals_cocoeval(seed):
    gts, preds = random_file(seed)
    if not any(gts):
        gts[0] = [([0, 0, 10, 10], "dog")]
    ap, ap50 = coco_average_precision(gts, preds)
    expected = direct_cocoeval(gts, preds)
    assert (ap, ap50) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_per_sample_rewards_equal_cocoeval_on_that_image(seed):
    gts, preds = random_file(seed, n_images=5)
    for objs, dets in zip(gts, preds):
        if not objs:
            continue
        answer = [det(b, label, score=s) for b, label, s in dets]
        objects = [gt(b, label) for b, label in objs]
        sizes = dict(original_sizes=[[400, 400]], frame_sizes=[[400, 400]])
        ap, ap50 = direct_cocoeval([objs], [dets])
        assert score(od_ap, answer, objects, **sizes) == pytest.approx(max(ap, 0.0), abs=1e-12)
        assert score(od_ap50, answer, objects, **sizes) == pytest.approx(max(ap50, 0.0), abs=1e-12)


def test_od_scores_keeps_objects_for_file_level_eval():
    out = od_scores(f"<answer>{json.dumps([det(DOG, 'Dog')])}</answer>", dict(objects=[gt(DOG, "dog")], **SIZE))
    assert out["gt"] == [(DOG, "dog")] and out["pred"] == [(DOG, "dog", 1.0)]
    assert (out["num_gt"], out["num_pred"], out["parsed"]) == (1, 1, 1.0)


@settings(settings.get_profile("vlmr1-rewards"))
@given(text=st.text(max_size=300) | st.lists(st.sampled_from(
    ["[", "]", "{", "}", ",", '"bbox_2d":', '"label":', '"dog"', '"score":', "1e999", "-3", "0.5", "NaN", "true",
     "<answer>", "</answer>", "[10, 10, 60, 60]"]), max_size=40).map("".join))
def test_any_text_gives_a_bounded_score(text):
    for fn in (od_ap, od_ap50, od_length):
        value = score(fn, text, [gt(DOG, "dog")])
        assert isinstance(value, float) and 0.0 <= value <= 1.0
