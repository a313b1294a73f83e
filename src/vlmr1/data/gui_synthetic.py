"""``vlmr1 data gui-synthetic``: small before/after screenshot pairs for the ``gui`` (UI defect) task.

Each sample is a fake phone settings screen drawn with PIL, a user action on it, and the screen after the action.
The label is one of the GUI-Testing-Arena (GTArena) defect classes, so the same prompt and ``all_match`` scoring
serve both this synthetic data and the real GTArena pairs:

* ``No Defect`` -- the after screen is what the action should give (the tapped row's page opens, the switch flips,
  the keyboard appears under a focused search field);
* ``Operation No Response`` -- the after screen equals the before screen (pixel for pixel);
* ``Navigation Logic Error`` -- tapping a row opens another row's page;
* ``Unexpected Task Result`` -- the right page opens but shows an error, or another switch flips instead;
* ``Virtual Keyboard Related Issue`` -- tapping the search field brings up a keyboard drawn over the field.

Output: ``DIR/gui_synthetic.jsonl`` and ``DIR/images/gui_<n>_{before,after}.png`` (``image`` paths are relative to
``DIR``, so train with ``--image_folders DIR``)::

    {"id": "gui-0000", "image": ["images/gui_0000_before.png", "images/gui_0000_after.png"],
     "conversations": [{"from": "human", "value": "<image><image>The first screenshot ... [tap the \\"Sound\\" row]"},
                       {"from": "gpt", "value": "Navigation Logic Error"}],
     "accu_reward_method": "all_match", "action": "tap the \\"Sound\\" row"}

Classes are balanced (cycled in a seeded random order); the same ``--seed`` gives the same files.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from PIL import Image, ImageDraw, ImageFont

from vlmr1.arguments import CommandParser, integer
from vlmr1.fileio import write_jsonl
from vlmr1.tasks.gui import DEFECT_CLASSES, KEYBOARD, NAVIGATION, NO_DEFECT, NO_RESPONSE, UNEXPECTED

SIZE = (144, 256)  # a small portrait phone screen; flat colours keep each PNG at a few KB
APPS = ("Settings", "Device", "Account", "Options")
PAGES = ("Display", "Sound", "Battery", "Privacy", "Storage", "Language", "About", "Updates")
SWITCHES = ("Wi-Fi", "Bluetooth", "Dark mode", "Location", "Auto sync", "Airplane")
ACCENTS = ((33, 99, 204), (0, 131, 116), (120, 60, 170), (200, 80, 30))
QUESTION = ("<image><image>The first screenshot was taken before and the second after this user action: [{action}]. "
            "Compare the two screenshots and decide whether the action revealed a UI interaction defect.")
ROW_TOP, ROW_HEIGHT = 78, 26


@dataclass
class Screen:
    """What one screenshot shows.

    Attributes:
        title: App bar title.
        rows: ``(label, switch_state)`` per list row; ``switch_state`` is None for a row that opens a page.
        back: Draw a back arrow (a sub-page).
        focused: The search field has focus.
        keyboard: ``None``, ``"ok"`` (docked at the bottom) or ``"over_field"`` (covering the search field).
        message: An error message shown instead of the rows.
    """

    title: str
    rows: list[tuple[str, bool | None]] = field(default_factory=list)
    back: bool = False
    focused: bool = False
    keyboard: str | None = None
    message: str | None = None


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def render(screen: Screen, accent: tuple[int, int, int]) -> Image.Image:
    """Draw a screen.

    Args:
        screen: What to show.
        accent: App bar and active-switch colour.

    Returns:
        An RGB image of :data:`SIZE`.
    """
    w, h = SIZE
    img = Image.new("RGB", SIZE, (248, 248, 248))
    draw = ImageDraw.Draw(img)
    font = _font()
    draw.rectangle([0, 0, w, 14], fill=(40, 40, 40))
    draw.text((4, 1), "9:41", fill=(255, 255, 255), font=font)
    draw.rectangle([0, 14, w, 42], fill=accent)
    draw.text((24 if screen.back else 8, 22), screen.title, fill=(255, 255, 255), font=font)
    if screen.back:
        draw.line([(14, 22), (8, 28), (14, 34)], fill=(255, 255, 255), width=2)
    border = accent if screen.focused else (190, 190, 190)
    draw.rounded_rectangle([8, 48, w - 8, 68], radius=8, fill=(255, 255, 255), outline=border,
                           width=2 if screen.focused else 1)
    draw.text((18, 52), "Search", fill=(150, 150, 150), font=font)
    if screen.focused:
        draw.line([(16, 52), (16, 64)], fill=accent, width=1)
    if screen.message:
        draw.text((14, 130), screen.message, fill=(190, 30, 30), font=font)
    else:
        for i, (label, state) in enumerate(screen.rows):
            y = ROW_TOP + i * ROW_HEIGHT
            draw.text((10, y + 7), label, fill=(30, 30, 30), font=font)
            draw.line([(8, y + ROW_HEIGHT - 1), (w - 8, y + ROW_HEIGHT - 1)], fill=(225, 225, 225))
            if state is None:
                draw.line([(w - 18, y + 8), (w - 13, y + 13), (w - 18, y + 18)], fill=(120, 120, 120), width=2)
            else:
                draw.rounded_rectangle([w - 34, y + 7, w - 12, y + 19], radius=6,
                                       fill=accent if state else (200, 200, 200))
                knob = w - 24 if state else w - 34
                draw.ellipse([knob, y + 7, knob + 12, y + 19], fill=(255, 255, 255), outline=(160, 160, 160))
    if screen.keyboard:
        top = 40 if screen.keyboard == "over_field" else h - 84
        draw.rectangle([0, top, w, top + 84], fill=(210, 213, 219))
        for r, keys in enumerate(("QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM")):
            x0 = 3 + r * 6
            for k, key in enumerate(keys):
                x = x0 + k * 14
                draw.rounded_rectangle([x, top + 6 + r * 24, x + 11, top + 24 + r * 24], radius=2, fill=(255, 255, 255))
                draw.text((x + 2, top + 8 + r * 24), key, fill=(20, 20, 20), font=font)
    return img


def _home_screen(rng: random.Random) -> Screen:
    pages = rng.sample(PAGES, 3)
    switches = rng.sample(SWITCHES, 2)
    rows: list[tuple[str, bool | None]] = [(p, None) for p in pages] + [(s, rng.random() < 0.5) for s in switches]
    rng.shuffle(rows)
    return Screen(rng.choice(APPS), rows)


def _page(title: str, rng: random.Random) -> Screen:
    return Screen(title, [(s, rng.random() < 0.5) for s in rng.sample(SWITCHES, 3)], back=True)


def make_pair(defect: str, rng: random.Random) -> tuple[Screen, Screen, str]:
    """A before screen, the after screen showing ``defect`` and the action's description.

    Args:
        defect: One of :data:`DEFECT_CLASSES`.
        rng: Random source.

    Returns:
        ``(before, after, action)``.
    """
    before = _home_screen(rng)
    pages = [label for label, state in before.rows if state is None]
    switches = [label for label, state in before.rows if state is not None]
    kinds = {NO_DEFECT: ("row", "switch", "search"), NO_RESPONSE: ("row", "switch", "search"),
             NAVIGATION: ("row",), UNEXPECTED: ("row", "switch"), KEYBOARD: ("search",)}[defect]
    kind = rng.choice(kinds)
    if kind == "search":
        action = "tap the search field"
        after = replace(before, focused=True, keyboard="over_field" if defect == KEYBOARD else "ok")
    elif kind == "row":
        target = rng.choice(pages)
        action = f'tap the "{target}" row'
        if defect == NAVIGATION:
            after = _page(rng.choice([p for p in pages if p != target]), rng)
        elif defect == UNEXPECTED:
            after = replace(_page(target, rng), message="Something went wrong")
        else:
            after = _page(target, rng)
    else:
        target = rng.choice(switches)
        state = dict(before.rows)[target]
        action = f'turn {"off" if state else "on"} the "{target}" switch'
        # Unexpected result: the other switch flips instead of the tapped one.
        flip = next(s for s in switches if s != target) if defect == UNEXPECTED else target
        after = replace(before, rows=[(label, (not s) if label == flip else s) for label, s in before.rows])
    if defect == NO_RESPONSE:
        after = before
    return before, after, action


def generate(output_dir: str, num: int, seed: int = 0) -> str:
    """Write ``num`` samples (images and jsonl) into ``output_dir``.

    Args:
        output_dir: Destination folder (created).
        num: Number of screenshot pairs.
        seed: Random seed; the same seed gives the same files.

    Returns:
        Path of the jsonl file.
    """
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    rng = random.Random(seed)
    os.makedirs(os.path.join(output_dir, "images"), exist_ok=True)
    order: list[str] = []
    rows = []
    for i in range(num):
        if not order:  # balanced classes: each cycle of len(DEFECT_CLASSES) holds every class once
            order = list(DEFECT_CLASSES)
            rng.shuffle(order)
        defect = order.pop()
        before, after, action = make_pair(defect, rng)
        accent = rng.choice(ACCENTS)
        names = [f"images/gui_{i:04d}_before.png", f"images/gui_{i:04d}_after.png"]
        for name, screen in zip(names, (before, after)):
            render(screen, accent).save(os.path.join(output_dir, name), optimize=True)
        rows.append({
            "id": f"gui-{i:04d}",
            "image": names,
            "conversations": [{"from": "human", "value": QUESTION.format(action=action)},
                              {"from": "gpt", "value": defect}],
            "accu_reward_method": "all_match",
            "action": action,
        })
    path = os.path.join(output_dir, "gui_synthetic.jsonl")
    write_jsonl(path, rows)
    return path


def build_parser() -> CommandParser:
    """The ``vlmr1 data gui-synthetic`` argument parser."""
    parser = CommandParser(prog="vlmr1 data gui-synthetic",
                           description="Generate synthetic before/after GUI screenshot pairs labelled with GTArena "
                                       "defect classes.")
    parser.add_argument("--output_dir", required=True, help="folder for gui_synthetic.jsonl and images/")
    parser.add_argument("--num", type=integer(1), default=100, help="number of screenshot pairs")
    parser.add_argument("--seed", type=integer(0), default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> str:
    """Run ``vlmr1 data gui-synthetic``.

    Args:
        argv: Command-line arguments (without the subcommand).

    Returns:
        Path of the written jsonl.
    """
    args = build_parser().parse_args(argv)
    path = generate(args.output_dir, args.num, args.seed)
    print(f"wrote {args.num} samples to {path} (images in {os.path.join(args.output_dir, 'images')})")
    return path
