"""``seg_iou`` / ``seg_format`` on hand-made masks: perfect, shifted, rescaled-frame and junk answers."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlmr1.geometry import fit_contour, mask_to_rle
from vlmr1.rewards import get_reward_function
from vlmr1.tasks.seg import parse_contour, seg_score

PROFILE = settings.get_profile(
    "vlmr1-rewards-nightly" if os.environ.get("HYPOTHESIS_PROFILE") == "nightly" else "vlmr1-rewards"
)
H, W = 200, 300


def ellipse(cx=140.0, cy=90.0, rx=70.0, ry=45.0):
    y, x = np.mgrid[0:H, 0:W] + 0.5
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


MASK = mask_to_rle(ellipse())
PARAMETRIC = fit_contour(ellipse(), "parametric", 8, "refined")
RADIAL = fit_contour(ellipse(), "radial", 8, "refined")


def answer(contour, decimals=None) -> str:
    return "<answer>" + json.dumps(contour.to_json_dict(decimals)) + "</answer>"


def completion(contour, decimals=None) -> str:
    return "<think>the object is an ellipse</think>" + answer(contour, decimals)


def reward(name, text, **row):
    fields = {"mask": MASK, "solution": answer(PARAMETRIC, 1), "original_sizes": [[W, H]], "frame_sizes": [[W, H]]}
    fields.update(row)
    out = get_reward_function(name)(prompts=["p"], completions=[text], **{k: [v] for k, v in fields.items()})
    assert len(out) == 1 and 0.0 <= out[0] <= 1.0
    return out[0]


def test_perfect_answer_scores_about_one_and_a_shifted_one_less():
    perfect = reward("seg_iou", completion(PARAMETRIC, 1))
    assert perfect > 0.97
    shifted = PARAMETRIC.affine(1.0, 1.0, 25.0, 0.0)
    assert 0.3 < reward("seg_iou", completion(shifted)) < perfect - 0.2
    far = PARAMETRIC.affine(1.0, 1.0, 400.0, 0.0)  # entirely right of the image
    assert reward("seg_iou", completion(far)) == 0.0
    assert reward("seg_format", completion(far)) == 1.0  # well-formed, just wrong


def test_radial_answers_score_against_a_radial_solution():
    row = {"solution": answer(RADIAL, 1)}
    assert reward("seg_iou", completion(RADIAL, 1), **row) > 0.95
    assert reward("seg_format", completion(RADIAL, 1), **row) == 1.0
    # the other representation is a format error, and scores no IoU
    assert reward("seg_iou", completion(PARAMETRIC), **row) == 0.0
    assert reward("seg_format", completion(PARAMETRIC), **row) == 0.0


@pytest.mark.parametrize("contour", [PARAMETRIC, RADIAL], ids=["parametric", "radial"])
def test_answer_in_a_half_size_frame_scores_the_same_after_rescaling(contour):
    solution = {"solution": answer(contour, 1)}
    full = reward("seg_iou", completion(contour), **solution)
    half = contour.affine(0.5, 0.5)  # what a model seeing the image at half size answers
    row = {"frame_sizes": [[W / 2, H / 2]], **solution}
    assert reward("seg_iou", completion(half), **row) == pytest.approx(full, abs=1e-9)
    # without the rescaling the half-size answer would be far off
    assert reward("seg_iou", completion(half), **solution) < full - 0.3


def test_answer_on_a_1000_grid_scores_the_same_after_rescaling():
    grid = PARAMETRIC.affine(1000 / W, 1000 / H)  # Qwen2-VL / Qwen3-VL answer on a 0-1000 grid
    full = reward("seg_iou", completion(PARAMETRIC))
    assert reward("seg_iou", completion(grid), frame_sizes=[[1000, 1000]]) == pytest.approx(full, abs=0.005)


def test_a_mask_on_a_different_grid_than_the_image_still_lines_up():
    # the jsonl image was replaced by a 2x copy: original_sizes say 600x400, the mask is 300x200
    doubled = PARAMETRIC.affine(2.0, 2.0)
    full = reward("seg_iou", completion(PARAMETRIC))
    assert reward("seg_iou", completion(doubled), original_sizes=[[2 * W, 2 * H]],
                  frame_sizes=[[2 * W, 2 * H]]) == pytest.approx(full, abs=1e-9)


def numbers(n, v=100.0):
    return [v] * n


JUNK = {
    "empty": "",
    "no tags, prose": "I think the object is in the middle.",
    "empty answer": "<think>x</think><answer></answer>",
    "null": "<think>x</think><answer>null</answer>",
    "a list": "<think>x</think><answer>[1, 2, 3, 4]</answer>",
    "three numbers": '<think>x</think><answer>{"x": [1, 2, 3], "y": [4, 5, 6]}</answer>',
    "unequal lengths": f'<think>x</think><answer>{{"x": {numbers(8)}, "y": {numbers(7)}}}</answer>',
    "NaN": f'<think>x</think><answer>{{"x": [NaN, {", ".join(["1"] * 7)}], "y": {numbers(8)}}}</answer>',
    "Infinity": f'<think>x</think><answer>{{"x": [Infinity, {", ".join(["1"] * 7)}], "y": {numbers(8)}}}</answer>',
    "1e308": f'<think>x</think><answer>{{"x": {numbers(8, 1e308)}, "y": {numbers(8, 1e308)}}}</answer>',
    "1e999": '<think>x</think><answer>{"x": [1e999, 1, 1, 1, 1, 1, 1, 1], "y": [1, 1, 1, 1, 1, 1, 1, 1]}</answer>',
    "huge int": '<think>x</think><answer>{"x": [' + "9" * 5000 + ', 1, 1, 1, 1, 1, 1, 1], "y": [1]}</answer>',
    "strings": '<think>x</think><answer>{"x": ["1", "2", "3", "4", "5", "6", "7", "8"], "y": [1, 2, 3, 4, 5, 6, 7, 8]}'
               "</answer>",
    "booleans": f'<think>x</think><answer>{{"x": [true, {", ".join(["1"] * 7)}], "y": {numbers(8)}}}</answer>',
    "nested": f'<think>x</think><answer>{{"x": [[1, 2], {", ".join(["1"] * 7)}], "y": {numbers(8)}}}</answer>',
    "extra key": f'<think>x</think><answer>{{"x": {numbers(8)}, "y": {numbers(8)}, "z": 1}}</answer>',
    "deep nesting": "<think>x</think><answer>" + "[" * 50_000 + "</answer>",
    "100 KB": "<think>x</think><answer>" + "1, " * 33_000 + "</answer>",
    "all zeros (a point)": f'<think>x</think><answer>{{"x": {numbers(8, 0)}, "y": {numbers(8, 0)}}}</answer>',
    "a horizontal line": '<think>x</think><answer>{"x": [150, 100, 0, 0, 0, 0, 0, 0], "y": [90, 0, 0, 0, 0, 0, 0, 0]}'
                         "</answer>",
    "radial garbage centre": '<think>x</think><answer>{"centre": ["a", 1], "coeffs": [1, 1, 1, 1, 1, 1, 1, 1]}'
                             "</answer>",
}


@pytest.mark.parametrize("text", JUNK.values(), ids=JUNK.keys())
def test_junk_scores_zero_and_never_raises(text):
    assert reward("seg_iou", text) == 0.0
    assert reward("seg_format", text) == 0.0


def test_seg_format_needs_the_think_answer_layout():
    assert reward("seg_format", completion(PARAMETRIC, 1)) == 1.0
    assert reward("seg_format", answer(PARAMETRIC, 1)) == 0.0  # no <think>
    assert reward("seg_format", completion(PARAMETRIC, 1) + " trailing") == 0.0
    assert reward("seg_iou", answer(PARAMETRIC, 1)) > 0.97  # IoU does not need the layout


def test_without_a_solution_the_answer_keys_decide_and_eight_terms_are_required():
    assert reward("seg_iou", completion(RADIAL), solution=None) > 0.95
    assert reward("seg_iou", completion(PARAMETRIC), solution="no contour here") > 0.97
    four = fit_contour(ellipse(), "parametric", 4, "fast")
    assert reward("seg_format", completion(four), solution=None) == 0.0
    assert reward("seg_format", completion(four), solution=answer(four)) == 1.0  # the solution says 4 terms


@pytest.mark.parametrize("row", [{"mask": None}, {"mask": {"size": [H, W]}}, {"mask": "junk"},
                                 {"original_sizes": [[0, -1]]}, {"frame_sizes": "x"}, {"solution": 12}])
def test_bad_rows_score_zero(row):
    assert 0.0 <= reward("seg_iou", completion(PARAMETRIC), **row) <= 1.0
    if "mask" in row:
        assert reward("seg_iou", completion(PARAMETRIC), **row) == 0.0


def test_score_parts_add_up():
    s = seg_score(completion(PARAMETRIC.affine(1.0, 1.0, 25.0, 0.0)), {"mask": MASK})
    true_area = float(ellipse().sum())
    assert s.parsed and 0 < s.intersection < true_area < s.union
    assert s.iou == pytest.approx(s.intersection / s.union)
    miss = seg_score("nothing", {"mask": MASK})
    assert miss == (0.0, true_area, 0.0, False)


def test_parse_contour_reads_fenced_json_inside_the_answer():
    fenced = "<answer>```json\n" + json.dumps(PARAMETRIC.to_json_dict(1)) + "\n```</answer>"
    assert parse_contour(fenced, "parametric", 8) is not None
    assert parse_contour(fenced, "radial", 8) is None


def _coefficient():
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                     st.text(max_size=3), st.none(), st.booleans())


@PROFILE
@given(x=st.lists(_coefficient(), max_size=12), y=st.lists(_coefficient(), max_size=12),
       key=st.sampled_from([("x", "y"), ("centre", "coeffs"), ("x", "coeffs")]))
def test_any_json_contour_scores_in_the_unit_interval(x, y, key):
    text = "<think>t</think><answer>" + json.dumps({key[0]: x, key[1]: y}) + "</answer>"
    for name in ("seg_iou", "seg_format"):
        reward(name, text)  # asserts one float in [0, 1]


@PROFILE
@given(scale=st.floats(1e-3, 1e3), shift=st.floats(-1e4, 1e4))
def test_rescaled_and_shifted_valid_contours_score_in_the_unit_interval(scale, shift):
    c = PARAMETRIC.affine(scale, scale, shift, -shift)
    reward("seg_iou", completion(c, 1))
