"""Rollout pictures: a few prompts, each followed by its G sampled completions, drawn by the rows' task.

One grid row per prompt: first the prompt's image with its question, then one tile per completion with the task's
overlay (:meth:`vlmr1.tasks.Task.overlay`: truth green, answer red, in original pixels), the total reward, the reward
of each function, the completion's length and its answer, clipped. Rows without an image get a blank tile, tasks
without geometry show the text and rewards only. Drawing never raises: a tile that fails is drawn as its text.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageFont

from vlmr1.rewards.parsing import answer_or_text
from vlmr1.tasks import Overlay, Task, get_task
from vlmr1.viz.draw import make_grid, render_overlay

logger = logging.getLogger(__name__)

TILE = 224  # drawn side of each image, in pixels (small images are scaled up by a whole factor)
MAX_COLUMNS = 8  # completions shown per prompt
CHAR_PX = 6  # width of a caption character
# Pillow's bitmap font: a caption line costs ~0.1 ms against ~3 ms for its scalable font, and a picture has ~100
FONT = ImageFont.load_default_imagefont()


@dataclass
class Rollout:
    """One sampled completion of a prompt, with what the trainer scored it.

    Attributes:
        row: the dataset row the rewards saw (``images``, ``prompt``, truth fields, ``original_sizes``,
            ``frame_sizes``, ``task_type``).
        text: the completion text.
        rewards: reward per function name (NaN where a function did not apply).
        total: the weighted sum the advantages are computed from.
        num_tokens: completion length in tokens, when known.
    """

    row: Mapping[str, Any]
    text: str
    rewards: Mapping[str, float] = field(default_factory=dict)
    total: float | None = None
    num_tokens: int | None = None


def group_by_prompt(rollouts: Sequence[Rollout]) -> list[list[Rollout]]:
    """Consecutive rollouts of the same row (TRL samples a prompt's G completions next to each other)."""
    groups: list[list[Rollout]] = []
    for rollout in rollouts:
        if groups and _same_row(groups[-1][0].row, rollout.row):
            groups[-1].append(rollout)
        else:
            groups.append([rollout])
    return groups


def _same_row(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a is b:
        return True
    keys = ("source", "id")
    return all(k in a and k in b for k in keys) and all(a[k] == b[k] for k in keys)


def question_text(row: Mapping[str, Any], task: Task | None = None) -> str:
    """The question of the prompt's last user turn (image blocks left out), without the task's template around it."""
    text = str(row.get("phrase") or "")
    for turn in reversed(row.get("prompt") or []):
        if isinstance(turn, Mapping) and turn.get("role") == "user":
            content = turn.get("content")
            text = content if isinstance(content, str) else " ".join(
                str(p.get("text") or "") for p in content or [] if isinstance(p, Mapping))
            break
    text = text.strip()
    if task is not None:
        try:
            before, _, after = (part.strip() for part in task.format_question("\x00").partition("\x00"))
        except (KeyError, IndexError, ValueError):  # a template with fields of its own
            before = after = "\x00"
        if text.startswith(before) and text.endswith(after):
            text = text[len(before): len(text) - len(after)].strip()
    return text


def clip_lines(text: str, width: int, lines: int) -> list[str]:
    """``text`` wrapped to ``width`` characters, at most ``lines`` lines, the last one ending in "..." if cut.
    Characters the bitmap font lacks (beyond Latin-1, control characters) become "?"."""
    flat = " ".join(str(text).split())
    flat = "".join(c if c.isprintable() and ord(c) < 256 else "?" for c in flat)
    wrapped = textwrap.wrap(flat, width=max(8, width), break_long_words=True) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: max(0, width - 3)] + "..."
    return wrapped


def _short(name: str) -> str:
    """A reward's display name: the part after a ``module:`` prefix, without a ``_reward`` suffix."""
    return name.rsplit(":", 1)[-1].removesuffix("_reward")


def _first_image(row: Mapping[str, Any]) -> Image.Image | None:
    images = row.get("images") or []
    first = images[0] if isinstance(images, list | tuple) and images else None
    return first if isinstance(first, Image.Image) else None


def _task_of(row: Mapping[str, Any], default: Task | None) -> Task:
    try:
        return get_task(row.get("task_type") or default or "default")
    except ValueError:
        return default or get_task("default")


def completion_caption(rollout: Rollout, width: int) -> str:
    """Total reward, each function's reward and the length on top; the answer (clipped) below."""
    parts = [] if rollout.total is None else [f"R {rollout.total:.2f}"]
    parts += [f"{_short(name)} {value:.2f}" for name, value in rollout.rewards.items() if value == value]
    if rollout.num_tokens is not None:
        parts.append(f"{rollout.num_tokens} tok")
    head = clip_lines(" ".join(parts), width, 2)
    return "\n".join(head + clip_lines("answer: " + answer_or_text(rollout.text), width, 2))


def draw_rollout_tile(rollout: Rollout, task: Task, tile: int = TILE) -> Image.Image:
    """One completion: the task's overlay over the row's first image (or a blank tile), with its caption."""
    image = _first_image(rollout.row)
    overlay: Overlay | None = None
    if image is not None:
        try:
            overlay = task.overlay(rollout.row, rollout.text)
        except Exception as e:  # a user's task must not stop training for a picture
            logger.debug("overlay of task %s failed: %s", task.name, e)
    base = image if image is not None else Image.new("RGB", (tile, tile // 3), "white")
    caption = completion_caption(rollout, tile // CHAR_PX - 2)
    return render_overlay(base, overlay, caption, max_side=tile, min_side=tile, font=FONT)


def draw_prompt_tile(row: Mapping[str, Any], task: Task | None = None, tile: int = TILE) -> Image.Image:
    """The prompt: its first image, with the question below (clipped)."""
    image = _first_image(row)
    base = image if image is not None else Image.new("RGB", (tile, tile // 3), "white")
    caption = "\n".join(clip_lines(question_text(row, task), tile // CHAR_PX - 2, 4))
    return render_overlay(base, None, caption, max_side=tile, min_side=tile, font=FONT)


def draw_rollouts(rollouts: Sequence[Rollout], num_prompts: int = 4, task: Task | None = None,
                  tile: int = TILE) -> Image.Image:
    """The rollout grid: ``num_prompts`` prompts, one per grid row, each followed by up to 8 of its completions.

    Args:
        rollouts: completions in the trainer's order (a prompt's completions next to each other).
        num_prompts: grid rows.
        task: the task for rows without ``task_type`` (a row's own ``task_type`` wins).
        tile: longer side of each drawn image, in pixels.

    Returns:
        One RGB image.
    """
    groups = group_by_prompt(rollouts)[:num_prompts]
    if not groups:
        raise ValueError("draw_rollouts needs at least one rollout")
    columns = 1 + min(MAX_COLUMNS, max(len(g) for g in groups))
    tiles: list[Image.Image] = []
    blank = None
    for group in groups:
        row_task = _task_of(group[0].row, task)
        line = [draw_prompt_tile(group[0].row, row_task, tile)]
        line += [draw_rollout_tile(r, row_task, tile) for r in group[: columns - 1]]
        while len(line) < columns:  # a prompt whose completions were split over processes
            blank = blank or Image.new("RGB", (1, 1), "white")
            line.append(blank)
        tiles += line
    return make_grid(tiles, columns=columns)
