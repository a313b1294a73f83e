"""The seed's jsonl format: one line = one sample, checked with errors that name file:line and the fix.

A line looks like::

    {"id": 1, "image": "a.jpg" | ["a.jpg", "b.jpg"],
     "conversations": [{"from": "human", "value": "<image>Question?"}, {"from": "gpt", "value": "answer"}],
     "accu_reward_method": "mcq",          # optional
     ...any extra fields...}               # reach the reward functions unchanged

The last ``gpt`` turn is the solution; every turn before it is the prompt. Each ``<image>`` in the prompt marks where
one image goes, in order; a prompt with no ``<image>`` at all gets its images before the first question (as VLM-R1
did); a line without ``image`` is text-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vlmr1.errors import UserError

IMAGE_PLACEHOLDER = "<image>"
ROLE_BY_SPEAKER = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
# Keys the loader consumes; everything else on a line is an extra field passed through to the rewards.
RESERVED_KEYS = {"id", "image", "conversations", "accu_reward_method"}


class DataError(UserError):
    """Bad input data. The message always names the file, the line (1-based) and what to fix.

    ``kind`` sorts the problem for ``vlmr1 data check``: ``bad_line`` (the schema), ``bad_json``, ``image_count``,
    ``empty_answer``, ``missing_image``, ``corrupt_image``.
    """

    def __init__(self, path: str, line: int | None = None, problem: str = "", fix: str = "", kind: str = "bad_line"):
        super().__init__(problem, where=path, line=line, fix=fix, kind=kind)

    @property
    def path(self) -> str:
        return self.where


@dataclass
class Sample:
    """One validated jsonl line.

    Attributes:
        id: the line's ``id`` (or ``"<file>:<line>"`` when absent).
        images: image paths as written in the file (relative to the image folder), in ``<image>`` order.
        messages: the prompt as ``(role, text)`` pairs, roles ``system``/``user``/``assistant``.
        solution: the final ``gpt`` value, as text.
        accu_reward_method: per-line accuracy method, or None to use the file's ``--reward_method``.
        extra: every other field of the line, unchanged.
    """

    id: Any
    images: list[str]
    messages: list[tuple[str, str]]
    solution: str
    accu_reward_method: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_line(text: str, path: str, line_no: int) -> Sample:
    """Parse and check one jsonl line (everything except that the image files exist).

    Args:
        text: the raw line.
        path, line_no: where it came from, for error messages.

    Returns:
        The :class:`Sample`.

    Raises:
        DataError: naming ``path:line_no``, what is wrong and how to fix it.
    """
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, line_no, f"not valid JSON ({e.msg} at column {e.colno})",
                        "each line must be one complete JSON object; check quotes, commas and brackets",
                        kind="bad_json") from None
    if not isinstance(row, dict):
        raise DataError(path, line_no, f"a line must be a JSON object, got {type(row).__name__}",
                        'write {"id": ..., "image": ..., "conversations": [...]} on each line', kind="bad_json")

    conversations = row.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise DataError(path, line_no, "missing or empty 'conversations'",
                        'add "conversations": [{"from": "human", "value": "<image>..."}, {"from": "gpt", "value": "..."}]')
    turns: list[tuple[str, str]] = []
    for k, turn in enumerate(conversations):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise DataError(path, line_no, f"conversations[{k}] must be an object with 'from' and 'value'",
                            'write {"from": "human" | "gpt", "value": "..."}')
        role = ROLE_BY_SPEAKER.get(str(turn["from"]).lower())
        if role is None:
            raise DataError(path, line_no, f"conversations[{k}].from is {turn['from']!r}",
                            f"use one of {sorted(ROLE_BY_SPEAKER)}")
        value = turn["value"]
        if value is None:  # json.dumps would make it the answer "null"
            raise DataError(path, line_no, f"conversations[{k}].value is null",
                            'write the text, e.g. {"from": "gpt", "value": "3"}',
                            kind="empty_answer" if k == len(conversations) - 1 else "bad_line")
        turns.append((role, value if isinstance(value, str) else json.dumps(value)))
    if turns[-1][0] != "assistant":
        raise DataError(path, line_no, "the last turn must be the answer (from 'gpt')",
                        'end conversations with {"from": "gpt", "value": "<the correct answer>"}')
    if len(turns) < 2 or not any(role == "user" for role, _ in turns[:-1]):
        raise DataError(path, line_no, "no question: 'conversations' needs a 'human' turn before the 'gpt' answer",
                        'start with {"from": "human", "value": "<image>your question"}')
    solution = turns[-1][1]
    if not solution.strip():
        raise DataError(path, line_no, "the 'gpt' answer is empty", "give the correct answer the rewards compare with",
                        kind="empty_answer")

    image = row.get("image")
    if image is None or image == "" or image == []:
        images: list[str] = []
    elif isinstance(image, str):
        images = [image]
    elif isinstance(image, list) and all(isinstance(p, str) and p for p in image):
        images = list(image)
    else:
        raise DataError(path, line_no, f"'image' must be a path or a list of paths, got {json.dumps(image)[:80]}",
                        'write "image": "dir/a.jpg" or "image": ["a.jpg", "b.jpg"]')

    prompt = turns[:-1]
    placeholders = sum(text.count(IMAGE_PLACEHOLDER) for _, text in prompt)
    if placeholders == 0 and images:
        # VLM-R1's own files (e.g. the GUI multi-image set) write no placeholder: the images then precede the
        # first question, in order, as VLM-R1 placed them.
        first = next(i for i, (role, _) in enumerate(prompt) if role == "user")
        prompt[first] = ("user", IMAGE_PLACEHOLDER * len(images) + prompt[first][1])
    elif placeholders != len(images):
        raise DataError(path, line_no,
                        f"{placeholders} '<image>' placeholder(s) in the question but {len(images)} image(s)",
                        "put exactly one '<image>' in the human turn for each entry of 'image', in order "
                        "(or none at all: the images then go before the question)", kind="image_count")

    method = row.get("accu_reward_method")
    if method is not None and not isinstance(method, str):
        raise DataError(path, line_no, f"'accu_reward_method' must be a string, got {method!r}",
                        'write e.g. "accu_reward_method": "mcq"')
    extra = {k: v for k, v in row.items() if k not in RESERVED_KEYS}
    sample_id = row.get("id", f"{path}:{line_no}")
    return Sample(sample_id, images, prompt, solution, method or None, extra)


def to_chat_messages(messages: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Turn ``(role, text)`` pairs into TRL's structured chat messages, with an image block at each ``<image>``.

    Returns:
        ``[{"role": ..., "content": [{"type": "image"}, {"type": "text", "text": ...}, ...]}, ...]``; the image
        blocks carry no payload, TRL fills them with the sample's images in order.
    """
    out = []
    for role, text in messages:
        content: list[dict[str, Any]] = []
        for k, piece in enumerate(text.split(IMAGE_PLACEHOLDER)):
            if k > 0:
                content.append({"type": "image"})
            if piece:
                content.append({"type": "text", "text": piece})
        out.append({"role": role, "content": content})
    return out
