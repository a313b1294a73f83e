"""``vlmr1 demo --quick``: every stage runs (a few steps each) and the report files exist and parse."""

from __future__ import annotations

import json
import time
from html.parser import HTMLParser

import pytest
from PIL import Image

from vlmr1.demo import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # as `make demo` passes it: the time before the demo started (setting up .venv) counts
    main(["--output_dir", str(out), "--quick", "--started_at", str(time.time() - 60)])
    return out


def test_metrics_json_has_three_stages_in_range(demo_dir):
    metrics = json.loads((demo_dir / "metrics.json").read_text())
    assert list(metrics["stages"]) == ["before", "sft", "grpo"]
    for stage in metrics["stages"].values():
        assert set(stage) >= {"gIoU", "cIoU", "parse_rate"}
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in stage.values())
    assert metrics["steps"]["sft"] > 0 and metrics["steps"]["grpo"] > 0
    assert {"model", "data", "sft", "grpo", "eval_grpo", "total"} <= set(metrics["seconds"])
    assert metrics["seconds"]["setup"] >= 60 and metrics["seconds"]["total"] >= 60 + metrics["seconds"]["sft"]


def test_report_html_parses_and_embeds_the_figures(demo_dir):
    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.images = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag == "img":
                self.images.append(dict(attrs))

    page = Collect()
    text = (demo_dir / "report.html").read_text(encoding="utf-8")
    page.feed(text)
    assert "table" in page.tags
    alts = [img["alt"] for img in page.images]
    # the demo's figures, then the GRPO stage's run report: curves and its first rollout picture
    assert alts[:5] == ["metrics per stage", "validation examples", "SFT loss", "training curves", "rollouts at step 1"]
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    gain = json.loads((demo_dir / "metrics.json").read_text())["gain"]
    assert gain["n"] == 8 and f"{gain['mean']:+.3f} ± {gain['se']:.3f}" in text  # GRPO vs SFT, paired


@pytest.mark.parametrize("name", ["metrics.png", "sft_loss.png", "examples.png", "grpo/rollouts/step-000001.png"])
def test_pngs_exist_and_open(demo_dir, name):
    with Image.open(demo_dir / name) as image:
        image.verify()
        assert image.format == "PNG"


def test_demo_leaves_the_models_and_data(demo_dir):
    for folder in ("model-init", "sft-model", "grpo-model"):
        assert (demo_dir / folder / "config.json").is_file()
    assert (demo_dir / "data" / "train.jsonl").is_file() and (demo_dir / "data" / "val.jsonl").is_file()
