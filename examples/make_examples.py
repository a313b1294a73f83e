"""Regenerate the bundled example data: `python examples/make_examples.py` (deterministic).

Writes small images of coloured shapes and three jsonl files in the seed's format:
- counting.jsonl: one image per line, "How many red shapes are there?" (numeric answer)
- multi_image.jsonl: two images per line, "How many shapes in total within the two images?"
- text_only.jsonl: arithmetic questions without images (math answers), to mix with the others
"""

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent
COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60)}


def draw_shapes(rng: random.Random, name: str) -> dict[str, int]:
    img = Image.new("RGB", (112, 112), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    counts = dict.fromkeys(COLOURS, 0)
    for _ in range(rng.randint(1, 4)):
        colour = rng.choice(list(COLOURS))
        x, y, r = rng.randint(15, 97), rng.randint(15, 97), rng.randint(6, 14)
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=COLOURS[colour])
        else:
            draw.rectangle([x - r, y - r, x + r, y + r], fill=COLOURS[colour])
        counts[colour] += 1
    img.save(HERE / "images" / name)
    return counts


def main() -> None:
    rng = random.Random(0)
    (HERE / "images").mkdir(exist_ok=True)
    counting, multi, text = [], [], []
    for i in range(16):
        counts = draw_shapes(rng, f"shapes_{i:02d}.png")
        counting.append({"id": f"count-{i}", "image": f"shapes_{i:02d}.png", "conversations": [
            {"from": "human", "value": "<image>How many red shapes are there?"},
            {"from": "gpt", "value": str(counts["red"])}], "accu_reward_method": "numeric"})
    for i in range(8):
        a, b = draw_shapes(rng, f"pair_{i:02d}_a.png"), draw_shapes(rng, f"pair_{i:02d}_b.png")
        multi.append({"id": f"pair-{i}", "image": [f"pair_{i:02d}_a.png", f"pair_{i:02d}_b.png"], "conversations": [
            {"from": "human", "value": "<image><image>How many shapes in total within the two images?"},
            {"from": "gpt", "value": str(sum(a.values()) + sum(b.values()))}]})
    for i in range(8):
        x, y = rng.randint(2, 20), rng.randint(2, 20)
        text.append({"id": f"sum-{i}", "conversations": [
            {"from": "human", "value": f"What is {x} + {y}?"}, {"from": "gpt", "value": f"${x + y}$"}],
            "accu_reward_method": "math"})
    for name, rows in [("counting", counting), ("multi_image", multi), ("text_only", text)]:
        with open(HERE / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
