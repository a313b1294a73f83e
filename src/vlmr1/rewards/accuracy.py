"""The ``accuracy`` reward and its registry of comparison methods.

For each sample the row's task picks the method (:meth:`vlmr1.tasks.Task.accuracy_method`): a free-text row uses the
method named in its ``accu_reward_method`` column (missing/None/"" -> ``"default"``; names are case-insensitive),
while a box, detection, mask or point row is scored by its geometry (``iou``, ``odLength``, ``seg_iou``,
``point_in_object``), whatever the text of its answer. The answer (``<answer>`` content if present, else the whole
completion; nothing when an ``<answer>`` is never closed) is compared with the gold ``solution`` (also stripped of
``<answer>`` tags). One batch may mix methods.

Built-in methods here (VLM-R1's names; each returns a score in [0, 1]):

* ``default``  -- VLM-R1's cascade: math-verify equivalence, then numbers, then option letters, then partial credit
  by Levenshtein ratio (see :func:`default_match`);
* ``mcq``      -- option letters A-Z extracted from both sides (``"(B)"``, ``"B."``, ``"answer is B"``);
* ``yes_no``   -- yes/no extracted from both sides (whole words);
* ``all_match``-- exact match after collapsing whitespace, casefolding and dropping trailing periods;
* ``numeric``  -- numbers (whole text, else the last number in it) equal within relative
  tolerance ``NUMERIC_REL_TOL`` (register a ``functools.partial(numeric_match, rel_tol=...)``
  under a new name for another tolerance);
* ``math``     -- math-verify ``parse`` + ``verify`` within a CPU-time budget (see
  :mod:`.math_equiv`); falls back to normalised exact match when the gold does not parse.

Tasks and other modules add methods with :func:`register_accuracy_method` (``iou`` in ``vlmr1.tasks.rec``, the OD
methods in ``vlmr1.tasks.od_methods``, ``llm`` in :mod:`.llm_judge`). A method is called as ``method(pred, gold,
row)`` where ``pred``/``gold`` are the extracted answer strings and ``row`` is the sample's dataset columns. An unknown
method name scores 0.0 and is logged; data loaders call :func:`validate_accuracy_method` up front to reject it with
file and line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rapidfuzz.distance import Indel

from .math_equiv import math_equivalent
from .parsing import (
    _NUMBER_IN_TEXT_RE,
    answer_or_text,
    collapse_whitespace,
    extract_choice,
    extract_last_number,
    extract_yes_no,
    normalize_text,
    parse_number,
)
from .registry import _load_task_rewards, log_limited, per_sample, register_reward

AccuracyMethod = Callable[[str, str, Mapping[str, Any]], float]

DEFAULT_METHOD = "default"
NUMERIC_REL_TOL = 1e-6

ACCURACY_METHODS: dict[str, AccuracyMethod] = {}


def canonical_method(name: object) -> str:
    """An ``accu_reward_method`` value as the registry keys it: lower-case, None/"" -> ``"default"``."""
    if name is None:
        return DEFAULT_METHOD
    name = str(name).strip().lower()
    return name or DEFAULT_METHOD


def register_accuracy_method(name: str, fn: AccuracyMethod | None = None, *, overwrite: bool = False) -> Any:
    """Register a comparison method for the ``accuracy`` reward (usable as a decorator).

    Args:
        name: Method name as written in ``accu_reward_method`` (stored lower-case).
        fn: ``fn(pred: str, gold: str, row: Mapping) -> float`` in [0, 1]; omit to decorate.
        overwrite: Allow replacing an existing method.

    Returns:
        ``fn`` (or a decorator when ``fn`` is omitted).

    Raises:
        ValueError: Empty name, or name taken and ``overwrite`` is False.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Accuracy method name must be a non-empty string, got {name!r}")
    key = canonical_method(name)

    def decorator(func: AccuracyMethod) -> AccuracyMethod:
        if key in ACCURACY_METHODS and ACCURACY_METHODS[key] is not func and not overwrite:
            raise ValueError(f"Accuracy method {key!r} is already registered; pass overwrite=True to replace it")
        ACCURACY_METHODS[key] = func
        return func

    return decorator if fn is None else decorator(fn)


def list_accuracy_methods() -> list[str]:
    """The registered accuracy method names (the built-in tasks' included), sorted."""
    _load_task_rewards()
    return sorted(ACCURACY_METHODS)


def validate_accuracy_method(name: object) -> str:
    """Check an ``accu_reward_method`` value before training starts.

    Args:
        name: The value from a data line (None/"" mean ``"default"``).

    Returns:
        The canonical (lower-case) method name.

    Raises:
        ValueError: Unknown method; the message lists the registered ones. Callers add file:line.
    """
    key = canonical_method(name)
    if key not in ACCURACY_METHODS:
        _load_task_rewards()
    if key not in ACCURACY_METHODS:
        raise ValueError(
            f"Unknown accu_reward_method {name!r}; registered methods: {', '.join(list_accuracy_methods())}"
        )
    precheck = getattr(ACCURACY_METHODS[key], "precheck", None)
    if precheck is not None:  # e.g. ``llm`` needs a judge server: say so before training starts
        precheck()
    return key


def exact_match(pred: str, gold: str) -> float:
    """1.0 when the normalised texts are equal (or both are the same single number), else 0.0."""
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        return 1.0 if math.isclose(a, b, rel_tol=NUMERIC_REL_TOL, abs_tol=0.0) else 0.0
    norm_gold = normalize_text(gold)
    return 1.0 if norm_gold and normalize_text(pred) == norm_gold else 0.0


def similarity(pred: str, gold: str) -> float:
    """Levenshtein ratio (``python-Levenshtein``'s ``ratio``: normalised indel similarity) of the normalised texts."""
    return float(Indel.normalized_similarity(normalize_text(pred), normalize_text(gold)))


def _numbers(text: str) -> list[float | None]:
    return [parse_number(m.group(0).rstrip(",")) for m in _NUMBER_IN_TEXT_RE.finditer(text)]


@register_accuracy_method("default")
def default_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """VLM-R1's ``default`` method: the first rule that applies decides.

    1. math-verify finds the answer equal to the gold (free text too: "There are 3." = "3") -> 1.0;
    2. the gold holds a digit: both single numbers -> 1.0 or 0.0; else the numbers in both texts must agree (0.0
       otherwise: VLM-R1 gives "11 apples" 0.89 against "10 apples") and the score is rule 4's;
    3. the gold is an option letter ("B", "(b)", "C."): 1.0 for the same letter, else 0.0;
    4. partial credit: the Levenshtein ratio of the normalised texts (1.0 when equal).

    Args:
        pred: Extracted answer.
        gold: Extracted solution.
        row: Sample columns (unused).

    Returns:
        A score in [0, 1].
    """
    if not normalize_text(gold):
        return 0.0
    if math_equivalent(pred, gold):
        return 1.0
    if any(c.isdigit() for c in gold):
        a, b = parse_number(pred), parse_number(gold)
        if a is not None and b is not None:
            return 1.0 if math.isclose(a, b, rel_tol=NUMERIC_REL_TOL, abs_tol=0.0) else 0.0
        if _numbers(pred) != _numbers(gold):
            return 0.0
        return similarity(pred, gold)
    choice = extract_choice(gold)
    if choice is not None:
        return 1.0 if extract_choice(pred) == choice else 0.0
    return similarity(pred, gold)


@register_accuracy_method("mcq")
def mcq_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """1.0 when answer and solution yield the same option letter, else 0.0 (``row`` unused)."""
    return _same_extracted(extract_choice, pred, gold)


@register_accuracy_method("yes_no")
def yes_no_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """1.0 when answer and solution yield the same yes/no, else 0.0 (``row`` unused)."""
    return _same_extracted(extract_yes_no, pred, gold)


def _same_extracted(extract: Callable[[str], object], pred: str, gold: str) -> float:
    """1.0 when ``extract`` finds a value in the solution and the same one in the answer."""
    gold_value = extract(gold)
    return 1.0 if gold_value is not None and extract(pred) == gold_value else 0.0


@register_accuracy_method("all_match")
def all_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """Whole-answer match after collapsing whitespace, casefolding and dropping trailing periods (as VLM-R1's
    ``all_match``), e.g. GUI defect classes.

    Args:
        pred: Extracted answer.
        gold: Extracted solution.
        row: Sample columns (unused).

    Returns:
        1.0 on a match, else 0.0.
    """
    norm_gold = collapse_whitespace(gold).casefold().rstrip(".")
    return 1.0 if norm_gold and collapse_whitespace(pred).casefold().rstrip(".") == norm_gold else 0.0


@register_accuracy_method("numeric")
def numeric_match(
    pred: str,
    gold: str,
    row: Mapping[str, Any] | None = None,
    *,
    rel_tol: float = NUMERIC_REL_TOL,
    abs_tol: float = 0.0,
) -> float:
    """Numeric equality within a tolerance; each side is the whole text or its last number.

    Args:
        pred: Extracted answer.
        gold: Extracted solution.
        row: Sample columns (unused).
        rel_tol: Relative tolerance (``math.isclose``).
        abs_tol: Absolute tolerance, useful when the gold is 0.

    Returns:
        1.0 when both numbers exist and are close, else 0.0.
    """
    b = extract_last_number(gold)
    if b is None:
        return 0.0
    a = extract_last_number(pred)
    return 1.0 if a is not None and math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol) else 0.0


@register_accuracy_method("math")
def math_match(pred: str, gold: str, row: Mapping[str, Any] | None = None) -> float:
    """Mathematical equivalence with math-verify (``\\frac{1}{2}`` == ``0.5``, ``\\boxed{}`` handled).

    Bounded by ``math_equiv.MATH_TIMEOUT_S`` of wall time (main thread); see :mod:`.math_equiv`.

    Args:
        pred: Extracted answer.
        gold: Extracted solution.
        row: Sample columns (unused).

    Returns:
        1.0 when equivalent, else 0.0; when the gold does not parse as math, normalised exact match.
    """
    equal = math_equivalent(pred, gold)
    if equal is None:
        return exact_match(pred, gold)
    return 1.0 if equal else 0.0


def score_accuracy(text: str, solution: object, method: object = None, row: Mapping[str, Any] | None = None) -> float:
    """Score one completion against its solution with the given method.

    Args:
        text: Completion text (may contain ``<think>``/``<answer>`` tags).
        solution: Gold answer (``<answer>`` tags allowed; non-strings are converted with ``str``).
        method: Accuracy method name (None/"" -> ``"default"``).
        row: The sample's dataset columns, forwarded to the method.

    Returns:
        The method's score (not yet clamped); 0.0 when there is no solution or the method is unknown.
    """
    if solution is None:
        return 0.0
    key = canonical_method(method)
    if key not in ACCURACY_METHODS:
        _load_task_rewards()
    fn = ACCURACY_METHODS.get(key)
    if fn is None:
        log_limited(
            f"accuracy:unknown-method:{key}",
            "Unknown accu_reward_method %r; scoring 0.0 (registered: %s)",
            key,
            ", ".join(list_accuracy_methods()),
        )
        return 0.0
    return fn(answer_or_text(text), answer_or_text(solution), row or {})


@register_reward("accuracy")
@per_sample
def accuracy_reward(text: str, solution: object = None, accu_reward_method: object = None, **row: Any) -> float:
    """Per-sample accuracy by the method the row's task picks (its geometry for boxes, detections, masks and points,
    else the row's ``accu_reward_method``): see :func:`vlmr1.tasks.row_accuracy`.

    Args:
        text: Completion text.
        solution: The sample's gold answer column.
        accu_reward_method: The sample's method name (missing/None/"" -> ``"default"``).
        **row: Other columns (``task_type`` among them), forwarded to the method.

    Returns:
        Score in [0, 1].
    """
    from vlmr1.tasks import row_accuracy  # tasks build on this module: looked up at call time

    return row_accuracy(text, dict(row, solution=solution, accu_reward_method=accu_reward_method))
