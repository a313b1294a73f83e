"""Fuzzing every reward and answer parser: any model output scores in [0, 1], fast, and parsers fail only as documented.

A reward that raises once kills a days-long RL run, so whatever a policy writes must give a float in [0, 1] within
a time bound, every answer parser must return a valid value or None (``from_json_dict`` may raise its documented
ValueError), and no raster larger than the image may be allocated. Inputs: arbitrary unicode, huge/NaN/inf numbers,
JSON nested 10,000 levels deep, 100 KB outputs, and structured junk built from the expected JSON shapes (right keys,
wrong lengths, types and values), against good and junk dataset rows.

``tests/rewards/test_rewards_properties.py`` already covers free text against text solutions; this file adds the
structured answers and rows, each parser on its own, the tasks' evaluation metrics and the raster bound.
Profile ``vlmr1-fuzz`` in CI; ``HYPOTHESIS_PROFILE=nightly`` runs 10,000 examples per target (see conftest.py).
"""

import json
import math
import os
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vlmr1.tasks  # noqa: F401  (registers every task and its rewards)
from vlmr1.geometry import ParametricContour, RadialContour, fit_contour, mask_to_rle
from vlmr1.geometry import masks as geometry_masks
from vlmr1.geometry.contours import MAX_ABS_COEFF
from vlmr1.models.frames import image_size
from vlmr1.rewards import REWARD_REGISTRY
from vlmr1.rewards.math_equiv import math_equivalent
from vlmr1.rewards.parsing import extract_choice, extract_last_number, extract_yes_no, parse_number
from vlmr1.tasks import TASKS
from vlmr1.tasks.od import MAX_DETECTIONS, parse_detections
from vlmr1.tasks.rec import parse_box
from vlmr1.tasks.seg import parse_contour, seg_score

NIGHTLY = os.environ.get("HYPOTHESIS_PROFILE") == "nightly"
PROFILE = settings.get_profile("vlmr1-fuzz-nightly" if NIGHTLY else "vlmr1-fuzz")


def fuzz(ci_examples: int | None = None) -> settings:
    """The run's profile; in CI, fewer examples for the targets that cost tens of milliseconds per example."""
    return PROFILE if NIGHTLY or ci_examples is None else settings(PROFILE, max_examples=ci_examples)


# One reward call on one completion (math-verify alone has a 1 s budget) or one parser call: generous for a loaded
# 2-core box, and far below what catastrophic regex backtracking or a per-pixel loop over a huge raster would take.
TIME_BOUND_S = 3.0
MAX_CHARS = 100_000
DEEP = 10_000
H = W = 100

# ------------------------------------------------------------------------------------------------ strategies

numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([10**400, -(10**30), 1e308, -1e308, 5e-324, -0.0, MAX_ABS_COEFF]))
scalars = numbers | st.text(max_size=6) | st.booleans() | st.none()
KEYS = ["x", "y", "centre", "coeffs", "bbox_2d", "bbox", "label", "score"]
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3),
                                                                           inner, max_size=4), max_leaves=12)


def lists_of(max_size):
    # Mostly numbers, as a model writes them; sometimes anything at all.
    return st.lists(numbers, max_size=max_size) | st.lists(scalars | json_values, max_size=max_size)


boxes = st.lists(numbers, min_size=4, max_size=4) | lists_of(6)
contours = st.one_of(
    st.fixed_dictionaries({"x": lists_of(10), "y": lists_of(10)}, optional={"extra": json_values}),
    st.fixed_dictionaries({"centre": lists_of(3), "coeffs": lists_of(10)}, optional={"extra": json_values}),
    st.fixed_dictionaries({}, optional={k: lists_of(10) | json_values for k in ("x", "y", "centre", "coeffs")}),
)
detection_items = st.fixed_dictionaries(
    {}, optional={"bbox_2d": boxes, "bbox": boxes, "label": st.sampled_from(["dog", " Dog.", "cat"]) | scalars,
                  "score": numbers | scalars}) | json_values
detections = st.one_of(
    st.lists(detection_items, max_size=6),
    st.builds(lambda item, n: [item] * n, detection_items, st.integers(0, MAX_DETECTIONS + 2)),  # the length cap
    detection_items,
)
shaped = st.one_of(boxes, st.fixed_dictionaries({"bbox_2d": boxes}), contours, detections, json_values)
WRAPPERS = ["@", "<answer>@</answer>", "<think>hmm</think><answer>@</answer>", "<answer>```json\n@\n```</answer>",
            "The answer is @ I think.", "<think>@</think><answer>@</answer>"]


def render(value, wrapper: str, cut: int | None) -> str:
    text = json.dumps(value, allow_nan=True)  # NaN/Infinity tokens, which json.loads reads back
    return wrapper.replace("@", text if cut is None else text[:cut])  # cut: a truncated generation


rendered = st.builds(render, shaped, st.sampled_from(WRAPPERS), st.none() | st.integers(0, 200))
ADVERSARIAL = [
    "[" * DEEP + "]" * DEEP,
    "<answer>" + "[" * DEEP + "1, 2, 3, 4" + "]" * DEEP + "</answer>",
    '{"x":' * DEEP + "1" + "}" * DEEP,
    '[{"bbox_2d":' * DEEP,
    "<answer>" * DEEP + "</answer>" * DEEP,
    "[" + "9" * 5000 + ", 1, 2, 3]",  # past Python's int-string digit limit
    '{"x": [1e999, -1e999, NaN, Infinity, 0, 0, 0, 0], "y": [0, 0, 0, 0, 0, 0, 0, 0]}',
    "1," * 30_000,
    "answer" + " " * 50_000 + ":",
    "\\frac{" * 2000,
]
FRAGMENTS = ["<think>", "</think>", "<answer>", "</answer>", "[", "]", "{", "}", ",", ":", '"x":', '"y":', '"centre":',
             '"coeffs":', '"bbox_2d":', '"label":', '"score":', "1e308", "1e999", "-1e999", "NaN", "Infinity", "-0",
             "0.5", "12", "```json\n", "```", "\\boxed{", "\\frac{1}{2}", "(B)", "yes", "no", "\u0000", "\u202e", "𝔘"]
pieces = st.one_of(rendered, st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=30).map("".join))
texts = st.one_of(
    st.text(max_size=300),
    pieces,
    st.sampled_from(ADVERSARIAL),
    # Up to 100 KB of a repeated piece keeps its structure at size (Hypothesis cannot draw 100 KB of choices).
    st.builds(lambda piece, n: (piece * (n // len(piece) + 1))[:n], pieces.filter(bool), st.integers(1, MAX_CHARS)),
)

# A 100 x 100 image with one ellipse: every structured row field has a valid value to start from.
_YY, _XX = np.mgrid[0:H, 0:W] + 0.5
ELLIPSE = ((_XX - 50) / 30) ** 2 + ((_YY - 45) / 20) ** 2 <= 1.0
MASK = mask_to_rle(ELLIPSE)
PARAMETRIC = fit_contour(ELLIPSE, "parametric", 8, "fast")
RADIAL = fit_contour(ELLIPSE, "radial", 8, "fast")
SOLUTIONS = ["<answer>" + json.dumps(PARAMETRIC.to_json_dict(1)) + "</answer>",
             "<answer>" + json.dumps(RADIAL.to_json_dict(1)) + "</answer>",
             "<answer>[20, 25, 80, 65]</answer>", "0.5", "B", "yes", "\\frac{1}{2}"]
GOOD = {"bbox": [20, 25, 80, 65], "objects": [{"bbox": [20, 25, 80, 65], "label": "dog"},
                                              {"bbox": [0, 0, 10, 10], "label": "cat"}],
        "mask": MASK, "original_sizes": [[W, H]], "frame_sizes": [[W, H]]}
sizes = st.sampled_from([[[W, H]], [[1000, 1000]], [[28, 14]], [[W, H], [5, 5]], None, [], [[0, 0]], [[math.inf, 1]],
                         [[10**400, 5]], [["a", 1]], [[None, 1]], [[1e-300, 1e-300]], [[1e300, 1e300]], [W, H]])
good_rows = st.fixed_dictionaries({"solution": st.sampled_from(SOLUTIONS),
                                   "frame_sizes": st.sampled_from([[[W, H]], [[1000, 1000]], [[28, 14]]]),
                                   "accu_reward_method": st.sampled_from(["default", "mcq", "numeric", "math"])})
junk_masks = st.sampled_from([MASK, {"size": [H, W], "counts": "garbage"}, {"size": [H, W], "counts": ""},
                              {"size": [2 * H, 2 * W], "counts": mask_to_rle(np.zeros((2 * H, 2 * W)))["counts"]},
                              {"size": [H, W], "counts": [H * W]}, {"size": [-1, 5], "counts": ""}, {"counts": "x"}])
junk_rows = st.fixed_dictionaries({}, optional={
    "solution": st.sampled_from(SOLUTIONS) | texts | json_values, "bbox": boxes | json_values,
    "objects": st.lists(detection_items, max_size=4) | json_values, "mask": junk_masks | json_values,
    "original_sizes": sizes | json_values, "frame_sizes": sizes | json_values,
    "accu_reward_method": st.sampled_from(["default", "mcq", "yes_no", "numeric", "math", "nope", None]),
})


def completions_of(text: str) -> list:
    """The forms TRL passes: a string, a message list, content blocks, a separate reasoning field."""
    return [text, [{"role": "assistant", "content": text}],
            [{"role": "assistant", "content": [{"type": "text", "text": text}]}],
            [{"role": "assistant", "content": "<answer>" + text[-500:] + "</answer>", "reasoning_content": "r"}]]


# ------------------------------------------------------------------------------------------------ helpers


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND_S, f"{getattr(fn, '__name__', fn)} took {elapsed:.2f} s"
    return out


def call_reward(name: str, text: str, row: dict) -> list[float]:
    """Call a registered reward as TRL does (columns aligned with the completions) and check the contract."""
    completions = completions_of(text)
    n = len(completions)
    columns = {k: [v] * n for k, v in row.items()}
    start = time.perf_counter()
    out = REWARD_REGISTRY[name](prompts=["p"] * n, completions=completions, completion_ids=[[0]] * n,
                                trainer_state=None, log_extra=None, log_metric=None, **columns)
    elapsed = time.perf_counter() - start
    assert isinstance(out, list) and len(out) == n, name
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in out), (name, out)
    assert elapsed < TIME_BOUND_S * n, f"{name} took {elapsed:.2f} s for {n} completions of {len(text)} chars"
    return out


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    # math-verify imports sympy on first use; keep that out of the time bounds.
    math_equivalent("\\frac{1}{2}", "0.5")


# ------------------------------------------------------------------------------------------------ rewards


@fuzz(100)
@given(text=texts | rendered, row=good_rows)
def test_model_output_never_makes_a_reward_raise(text, row):
    """With a valid row, nothing a model writes may make a scorer raise (that would log a traceback per sample)."""
    row = {**GOOD, **row}
    for name, fn in REWARD_REGISTRY.items():
        value = timed(fn.scorer, text, **row)
        assert 0.0 <= float(value) <= 1.0, (name, value)
        call_reward(name, text, row)


@fuzz(100)
@given(text=texts | rendered, row=junk_rows)
def test_junk_rows_still_give_bounded_rewards(text, row):
    for name in REWARD_REGISTRY:
        call_reward(name, text, row)


@fuzz(100)
@given(text=texts | rendered, row=good_rows | junk_rows)
def test_task_metrics_never_raise(text, row):
    """Evaluation calls each task's ``sample_metrics`` on every sample; it must not raise on any text or row."""
    for name, task in TASKS.items():
        metrics = timed(task.sample_metrics, text, {**GOOD, **row})
        assert isinstance(metrics, dict), name


# ------------------------------------------------------------------------------------------------ parsers


@fuzz()
@given(text=texts | rendered)
def test_parse_box_returns_four_floats_or_none(text):
    box = timed(parse_box, text)
    assert box is None or (isinstance(box, list) and len(box) == 4 and all(isinstance(v, float) for v in box))


@fuzz()
@given(text=texts | rendered, representation=st.sampled_from([None, "parametric", "radial"]),
       terms=st.sampled_from([None, 8, 4]))
def test_parse_contour_returns_a_valid_contour_or_none(text, representation, terms):
    contour = timed(parse_contour, text, representation, terms)
    if contour is None:
        return
    assert isinstance(contour, ParametricContour | RadialContour)
    coeffs = [contour.x, contour.y] if isinstance(contour, ParametricContour) else [contour.centre, contour.coeffs]
    assert all(np.isfinite(c).all() and np.abs(c).max() <= MAX_ABS_COEFF for c in coeffs)
    if terms is not None:
        assert contour.terms == terms
    if representation is not None:
        assert isinstance(contour, ParametricContour if representation == "parametric" else RadialContour)


@fuzz()
@given(value=contours | json_values, terms=st.sampled_from([None, 8, 1, 64]))
def test_contour_from_json_dict_raises_only_value_error(value, terms):
    for cls in (ParametricContour, RadialContour):
        try:
            contour = cls.from_json_dict(value, terms)
        except ValueError:
            continue
        assert 1 <= contour.terms <= 64 and (terms is None or contour.terms == terms)
        assert np.isfinite(contour.to_polygon(16)).all()


@fuzz()
@given(text=texts | rendered)
def test_parse_detections_returns_clean_items_or_none(text):
    items = timed(parse_detections, text)
    if items is None:
        return
    assert isinstance(items, list) and len(items) <= MAX_DETECTIONS
    for item in items:
        assert set(item) == {"bbox", "label", "score"}
        assert item["bbox"] is None or (len(item["bbox"]) == 4 and all(math.isfinite(v) for v in item["bbox"]))
        assert item["label"] is None or isinstance(item["label"], str)
        assert isinstance(item["score"], float) and math.isfinite(item["score"])


@fuzz()
@given(text=texts | st.floats().map(repr) | st.integers().map(str))
def test_number_parsers_give_a_finite_float_or_none(text):
    for fn in (parse_number, extract_last_number):
        value = timed(fn, text)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), (fn.__name__, value)


@fuzz()
@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15))
def test_parse_number_reads_back_what_python_writes(value):
    assert parse_number(repr(value)) == pytest.approx(float(value), rel=1e-15)


@fuzz()
@given(text=texts)
def test_choice_and_yes_no_extractors(text):
    choice = timed(extract_choice, text)
    assert choice is None or (len(choice) == 1 and "A" <= choice <= "Z")
    assert timed(extract_yes_no, text) in (None, "yes", "no")


@fuzz(30)
@given(pred=texts, gold=st.sampled_from(["0.5", "\\frac{1}{2}", "x^2 + 1", "\\sqrt{8}", "B", "yes"]) | texts)
def test_math_equivalent_answers_within_its_budget(pred, gold):
    assert timed(math_equivalent, pred, gold) in (True, False, None)


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[f"adversarial{i}" for i in range(len(ADVERSARIAL))])
def test_adversarial_outputs_parse_to_nothing_or_something_valid(text):
    """The hand-made worst cases, always run (deep nesting, digit-limit overflow, 100 KB of tags)."""
    assert timed(parse_box, text) is None or len(parse_box(text)) == 4
    assert timed(parse_contour, text, None, None) is None
    timed(parse_detections, text)
    for name in REWARD_REGISTRY:
        call_reward(name, text, GOOD)


# ------------------------------------------------------------------------------------------------ raster bound


class RasterWatch:
    """Wraps pycocotools' rasteriser in ``vlmr1.geometry.masks``: records the raster size and polygon extent."""

    def __init__(self, mask_utils):
        self.real, self.calls = mask_utils, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def frPyObjects(self, polygons, h, w):  # noqa: N802 - pycocotools' name
        for p in polygons if isinstance(polygons, list) else []:
            xy = np.asarray(p, dtype=float).reshape(-1, 2)
            self.calls.append((h, w, xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()))
        return self.real.frPyObjects(polygons, h, w)


extreme = st.sampled_from([MAX_ABS_COEFF, -MAX_ABS_COEFF, 1e308, -1e308, 1e-300, 0.0, 50.0]) | st.floats(-2e5, 2e5)


@fuzz(100)
@given(x=st.lists(extreme, min_size=8, max_size=8), y=st.lists(extreme, min_size=8, max_size=8),
       frame=st.sampled_from([[[W, H]], [[1, 1]], [[1e-3, 1e-3]], [[1e6, 1e6]], [[1000, 1000]]]),
       radial=st.booleans())
def test_seg_iou_never_rasterises_beyond_the_image(x, y, frame, radial):
    watch = RasterWatch(geometry_masks.mask_utils)
    answer = {"centre": x[:2], "coeffs": y} if radial else {"x": x, "y": y}
    text = "<answer>" + json.dumps(answer) + "</answer>"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(geometry_masks, "mask_utils", watch)
        score = timed(seg_score, text, {"mask": MASK, "original_sizes": [[W, H]], "frame_sizes": frame})
    assert 0.0 <= score.iou <= 1.0
    for h, w, x0, x1, y0, y1 in watch.calls:
        assert (h, w) == (H, W) and 0 <= x0 <= x1 <= W and 0 <= y0 <= y1 <= H


@pytest.mark.parametrize("coeff", [MAX_ABS_COEFF, 1e308])
@pytest.mark.parametrize("frame", [[[W, H]], [[1e-3, 1e-3]]])
def test_seg_iou_memory_stays_image_sized(coeff, frame):
    """Peak Python/numpy allocation of one seg_iou call on a 100x100 image stays far below a blown-up raster's.

    A 1e5 coefficient in a 1e-3-wide frame is a polygon 1e10 pixels across; rasterised unclipped it would need
    gigabytes. (1e308 is refused by the parser, so it also checks that path allocates nothing large.)
    """
    text = "<answer>" + json.dumps({"x": [coeff, coeff, -coeff, 0, 0, 0, 0, 0], "y": [0, -coeff, coeff, 0, 0, 0, 0, 0]},
                                   allow_nan=True) + "</answer>"
    row = {"mask": MASK, "original_sizes": [[W, H]], "frame_sizes": frame}
    REWARD_REGISTRY["seg_iou"](completions=[text], **{k: [v] for k, v in row.items()})  # imports, caches
    tracemalloc.start()
    try:
        out = REWARD_REGISTRY["seg_iou"](completions=[text], **{k: [v] for k, v in row.items()})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0.0 <= out[0] <= 1.0
    assert peak < 2_000_000, f"seg_iou peaked at {peak / 1e6:.1f} MB on a 100x100 image"


def test_polygon_clipping_output_lies_inside_the_image():
    far = np.array([[-1e308, -1e308], [1e308, -1e308], [1e308, 1e308], [-1e308, 1e308]])
    clipped = geometry_masks._clean_polygon(far, H, W)
    assert clipped is not None and clipped.shape[1] == 2
    assert clipped[:, 0].min() >= 0 and clipped[:, 0].max() <= W and clipped[:, 1].min() >= 0
    assert clipped[:, 1].max() <= H
    assert geometry_masks.polygon_to_mask(far, H, W).shape == (H, W)


# ------------------------------------------------------------------------------------------------ regressions
# Failing examples found by this fuzzing, kept as explicit cases (see the report of issue 8).


@pytest.mark.parametrize("counts", ["garbage", "", "0", [H * W - 1]])
def test_corrupt_row_mask_scores_zero_instead_of_hanging(counts):
    # pycocotools trusted the counts: "garbage" made merge() spin forever inside C, uninterruptibly.
    out = call_reward("seg_iou", "<answer>" + json.dumps(PARAMETRIC.to_json_dict(1)) + "</answer>",
                      {**GOOD, "mask": {"size": [H, W], "counts": counts}})
    assert out == [0.0] * len(out)


@pytest.mark.parametrize("sizes", [[[10**400, 5]], [[None, 1]], [["a", 1]], [[W, H, 3]]])
def test_unusable_image_sizes_are_a_value_error_and_metrics_survive(sizes):
    # [[10**400, 5]] raised OverflowError, which image_size did not document and rec_sample_metrics did not catch:
    # one such row crashed a whole evaluation.
    with pytest.raises(ValueError):
        image_size(sizes)
    metrics = TASKS["rec"].sample_metrics("<answer>[20, 25, 80, 65]</answer>", {**GOOD, "original_sizes": sizes})
    assert metrics["iou"] == 0.0


@pytest.mark.parametrize("value", [None, 7, 1.5, b"[1, 2, 3, 4]", ["[1, 2, 3, 4]"], {"x": [1]}])
def test_parsers_take_non_strings_without_raising(value):
    assert parse_box(value) is None and parse_detections(value) is None
    assert parse_number(value) is None and extract_last_number(value) is None
    assert extract_choice(value) is None and extract_yes_no(value) is None
    contour = parse_contour(value)
    assert contour is None or isinstance(contour, ParametricContour | RadialContour)
