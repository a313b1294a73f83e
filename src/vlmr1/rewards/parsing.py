"""Text helpers shared by the rewards: tag extraction, normalisation, numbers, options, yes/no.

Every helper here runs on raw model output, which can be empty, 100 KB long or adversarial.
So they never raise on odd input and take time linear in its length: tags are found with
``str.find``/``str.rfind`` and the few regexes avoid nested or adjacent unbounded quantifiers.

Tag conventions (R1 style), all case-sensitive and exact:

* ``<think>...</think>`` holds the reasoning, ``<answer>...</answer>`` the final answer.
* When several complete ``<answer>...</answer>`` pairs occur, the **last** one wins: models
  sometimes restate or correct themselves, and a tag quoted inside the reasoning comes first.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
# GLM-4.1V-Thinking writes its final answer between these markers (inside our answer tags, or instead of them).
BOX_OPEN, BOX_CLOSE = "<|begin_of_box|>", "<|end_of_box|>"

# Strings longer than this are never numbers; also keeps float() cheap.
_MAX_NUMBER_CHARS = 64
_TRAILING_PUNCT = ".,;:!?。，；：！？"

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Number tokens inside free text (thousands separators allowed); scanned left to right, linear.
_NUMBER_IN_TEXT_RE = re.compile(r"(?<![\w.])[+-]?\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?")

# A lone option letter, optionally bracketed and followed by "." or ":" -- "B", "(b)", "[C].".
_CHOICE_ALONE_RE = re.compile(r"[(\[]?([A-Za-z])[)\]]?[.:]?")
# An option leading the answer: "(B) Paris", "B. Paris", "B) Paris", "B: Paris".
_CHOICE_LEAD_RE = re.compile(r"(?:[(\[]([A-Za-z])[)\]]|([A-Z])[.):](?=\s|$))")
# "answer is B", "Answer: (c)", "option D", "choice B." -- uppercase bare, any case when bracketed.
_CHOICE_PHRASE_RE = re.compile(
    r"(?i:answer|option|choice)\s*(?:(?i:is)\b\s*)?(?:[:：]\s*)?(?:[(\[]([A-Za-z])[)\]]|([A-Z])(?![A-Za-z0-9]))"
)
_CHOICE_BRACKET_RE = re.compile(r"[(\[]([A-Z])[)\]]")
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_FENCE_RE = re.compile(r"```[A-Za-z]*[ \t]*\n?")


def _last_match(regex: re.Pattern, text: str) -> re.Match | None:
    # One linear scan; the last hit wins.
    last = None
    for match in regex.finditer(text):
        last = match
    return last


def extract_tag(text: str, open_tag: str, close_tag: str, *, last: bool = True) -> str | None:
    """Return the content of a complete ``open_tag ... close_tag`` pair.

    Args:
        text: Text to search.
        open_tag: Opening tag, e.g. ``"<answer>"``.
        close_tag: Closing tag, e.g. ``"</answer>"``.
        last: Take the last complete pair (default) instead of the first.

    Returns:
        The content between the tags, stripped of surrounding whitespace, or None when there is
        no complete pair.
    """
    if not isinstance(text, str):
        return None
    if last:
        end = text.rfind(close_tag)
        if end < 0:
            return None
        start = text.rfind(open_tag, 0, end)
        if start < 0:
            return None
    else:
        start = text.find(open_tag)
        if start < 0:
            return None
        end = text.find(close_tag, start + len(open_tag))
        if end < 0:
            return None
    return text[start + len(open_tag) : end].strip()


def extract_answer(text: str) -> str | None:
    """Return the stripped content of the last complete ``<answer>...</answer>`` pair, or None.

    Args:
        text: Completion text.

    Returns:
        Answer content, or None when no complete pair exists.
    """
    return extract_tag(text, ANSWER_OPEN, ANSWER_CLOSE, last=True)


def extract_think(text: str) -> str | None:
    """Return the stripped content of the first complete ``<think>...</think>`` pair, or None.

    Args:
        text: Completion text.

    Returns:
        Reasoning content, or None when no complete pair exists.
    """
    return extract_tag(text, THINK_OPEN, THINK_CLOSE, last=False)


def answer_or_text(text: object) -> str:
    """Return the ``<answer>`` content if present, else GLM's last ``<|begin_of_box|>...<|end_of_box|>`` content,
    else the whole text; stripped, and without GLM's box markers, either way.

    Used on both the completion and the gold ``solution`` (which may carry the tags too). A text whose last
    ``<answer>`` is never closed was cut off (``max_completion_length``): it has no answer, "" (VLM-R1 scores it 0 too).

    Args:
        text: Completion or solution; non-strings are converted with ``str`` (None -> "").

    Returns:
        The answer string.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    answer = extract_answer(text)
    if answer is not None and text.rfind(ANSWER_OPEN) > text.rfind(ANSWER_CLOSE):
        return ""  # an <answer> opened after the last complete one was cut off: no answer
    if answer is None:
        if ANSWER_OPEN in text:
            return ""
        answer = extract_tag(text, BOX_OPEN, BOX_CLOSE, last=True)
    if answer is None:
        answer = text.strip()
    if BOX_OPEN in answer or BOX_CLOSE in answer:
        answer = answer.replace(BOX_OPEN, "").replace(BOX_CLOSE, "").strip()
    return answer


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends.

    Args:
        text: Any string.

    Returns:
        The collapsed string.
    """
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """Normalise an answer for loose exact matching.

    Applies Unicode NFKC, casefolding, whitespace collapsing, and strips trailing punctuation
    (``. , ; : ! ?`` and their full-width forms) and surrounding quotes.

    Args:
        text: Answer string.

    Returns:
        The normalised string (may be empty).
    """
    text = collapse_whitespace(unicodedata.normalize("NFKC", text).casefold())
    text = text.rstrip(_TRAILING_PUNCT + " ")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def parse_number(text: str) -> float | None:
    """Parse a string that is *entirely* one finite number.

    Accepts signs, decimals, exponents, thousands separators (``1,234.5``), a trailing ``%``
    (kept as is: ``"50%"`` -> 50.0), a leading ``$`` and simple fractions ``a/b``. Rejects
    ``nan``/``inf``, overflowing values and anything longer than 64 characters.

    Args:
        text: Candidate string.

    Returns:
        The value as float, or None when the string is not a single finite number.
    """
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s or len(s) > _MAX_NUMBER_CHARS:
        return None
    s = s.rstrip(".").rstrip("%").strip()
    if s.startswith("$"):
        s = s[1:].strip()
    if "/" in s:
        num, _, den = s.partition("/")
        a, b = parse_number(num), parse_number(den)
        if a is None or b is None or b == 0.0:
            return None
        value = a / b
        return value if math.isfinite(value) else None
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    if not _NUMBER_RE.fullmatch(s):
        return None
    try:
        value = float(s)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def extract_last_number(text: str) -> float | None:
    """Return the whole text as a number, or else the last number appearing in it.

    Args:
        text: Free text such as ``"There are 3 cats."``.

    Returns:
        The number, or None when there is none (or it is not finite).
    """
    value = parse_number(text)
    if value is not None:
        return value
    if not isinstance(text, str):
        return None
    last = _last_match(_NUMBER_IN_TEXT_RE, text)
    if last is None:
        return None
    return parse_number(last.group(0).rstrip(","))


def extract_choice(text: str) -> str | None:
    """Extract a multiple-choice option letter (A-Z) from an answer.

    Tried in order: the whole answer is a letter (``"B"``, ``"(b)"``, ``"B."``); the answer starts
    with an option (``"B. Paris"``, ``"(B) Paris"``); the last ``answer/option/choice is B``
    phrase; the last bracketed capital ``(B)``. Bare lowercase letters only count when alone or
    bracketed, so ``"the answer is a cat"`` gives None.

    Args:
        text: Answer string.

    Returns:
        The upper-case letter, or None.
    """
    if not isinstance(text, str):
        return None
    s = text.strip()
    match = _CHOICE_ALONE_RE.fullmatch(s)
    if match:
        return match.group(1).upper()
    match = _CHOICE_LEAD_RE.match(s)
    if match:
        return (match.group(1) or match.group(2)).upper()
    for regex in (_CHOICE_PHRASE_RE, _CHOICE_BRACKET_RE):
        last = _last_match(regex, s)
        if last is not None:
            return next(g for g in last.groups() if g).upper()
    return None


def extract_yes_no(text: str) -> str | None:
    """Extract ``"yes"`` or ``"no"`` from an answer.

    A leading yes/no word wins (``"No, there is..."``); otherwise the last standalone yes/no
    word (``"there is no car, so yes"`` -> yes).

    Args:
        text: Answer string.

    Returns:
        ``"yes"``, ``"no"`` or None.
    """
    if not isinstance(text, str):
        return None
    s = text.strip()
    first = _YES_NO_RE.match(s.lstrip("\"'`*([ "))
    if first:
        return first.group(1).lower()
    last = _last_match(_YES_NO_RE, s)
    return last.group(1).lower() if last else None


def load_json_answer(text: str) -> Any:
    """The JSON an answer holds: the whole text without ```` ```json ```` fences, else its outermost bracketed span.

    Returns:
        The decoded value, or None when neither is valid JSON (deep nesting included).
    """
    text = (_FENCE_RE.sub("", text) if "```" in text else text).strip()  # Qwen models often fence their JSON
    candidates = [text]
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if starts:
        start = min(starts)
        end = max(text.rfind("]"), text.rfind("}"))
        if end > start and (start, end) != (0, len(text) - 1):
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the C parser's limit
            continue
    return None
