"""``vlmr1 report OUTPUT_DIR``: one HTML page for a training run, finished or still running.

    vlmr1 report output/my-run          # writes output/my-run/report.html

What it shows, from what the run left in its folder:

- a summary (steps, time, reward at the start and at the end) and the run's settings (``run.json``);
- training curves (:func:`vlmr1.viz.curves.plot_training`) from ``train_log.jsonl``, else ``trainer_state.json``
  (the folder's own, or the newest checkpoint's): whichever reaches the later step;
- the rollout pictures of ``rollouts/`` over time, with a slider (up to 12, evenly spaced, first and last included);
- evaluation metrics from ``eval/metrics.json`` and ``eval/*/metrics.json`` (``vlmr1 eval --output_dir RUN/eval``).

The page embeds its pictures, so the one file can be opened or mailed on its own; it is written atomically. The demo's
report (:mod:`vlmr1.demo.report`) is this page with the demo's stages added.
"""

from __future__ import annotations

import argparse
import base64
import glob
import html
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vlmr1.fileio import atomic_write

RUN_SETTINGS = "run.json"
LOG_FILE = "train_log.jsonl"
MAX_PICTURES = 12
_STEP_RE = re.compile(r"step-(\d+)\.png$")
_CHECKPOINT_RE = re.compile(r"checkpoint-(\d+)$")

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}
pre{background:#f6f6f6;padding:1em;font-size:12px;overflow-x:auto}.muted{color:#666;font-size:90%}
.slider{display:flex;align-items:center;gap:1em;margin:.5em 0}.slider input{flex:1}"""

SLIDER_JS = """<script>
for (const box of document.querySelectorAll('.gallery')) {
  const pics = box.querySelectorAll('figure'), range = box.querySelector('input'), label = box.querySelector('.step');
  const show = k => { pics.forEach((p, i) => p.hidden = i != k); label.textContent = pics[k].dataset.step; };
  range.addEventListener('input', () => show(+range.value));
  show(+range.value);
}
</script>"""


@dataclass
class RunRecord:
    """What a run's folder holds, read by :func:`read_run`."""

    output_dir: str
    history: list[dict] = field(default_factory=list)
    history_source: str | None = None
    max_steps: int | None = None
    pictures: list[tuple[int, str]] = field(default_factory=list)  # (step, path), by step
    evals: list[tuple[str, dict]] = field(default_factory=list)  # (label, metrics.json)
    settings: dict = field(default_factory=dict)


def _trainer_states(output_dir: str) -> list[str]:
    """``trainer_state.json`` of the folder and of its checkpoints, newest checkpoint first."""
    found = [os.path.join(output_dir, "trainer_state.json")]
    checkpoints = [(int(m.group(1)), p) for p in glob.glob(os.path.join(output_dir, "checkpoint-*"))
                   if (m := _CHECKPOINT_RE.search(p))]
    found += [os.path.join(p, "trainer_state.json") for _, p in sorted(checkpoints, reverse=True)]
    return [p for p in found if os.path.isfile(p)]


def _last_step(history: Sequence[Mapping[str, Any]]) -> int:
    return max((h["step"] for h in history if isinstance(h.get("step"), int)), default=-1)


def read_run(output_dir: str) -> RunRecord:
    """Read a run folder (see the module docstring). Missing pieces stay empty.

    Raises:
        FileNotFoundError: the folder does not exist.
    """
    if not os.path.isdir(output_dir):
        raise FileNotFoundError(f"{output_dir} is not a folder; fix: pass the --output_dir of a vlmr1 train run")
    record = RunRecord(output_dir)
    log_path = os.path.join(output_dir, LOG_FILE)
    if os.path.isfile(log_path):
        record.history, record.history_source = read_log(log_path), log_path
    for path in _trainer_states(output_dir):
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue
        history = state.get("log_history") or []
        record.max_steps = record.max_steps or state.get("max_steps")
        if _last_step(history) > _last_step(record.history):
            record.history, record.history_source = history, path
    for path in glob.glob(os.path.join(output_dir, "rollouts", "step-*.png")):
        if m := _STEP_RE.search(path):
            record.pictures.append((int(m.group(1)), path))
    record.pictures.sort()
    eval_files = [os.path.join(output_dir, "eval", "metrics.json")]
    eval_files += sorted(glob.glob(os.path.join(output_dir, "eval", "*", "metrics.json")))
    for path in eval_files:
        try:
            with open(path, encoding="utf-8") as f:
                record.evals.append((os.path.relpath(path, output_dir), json.load(f)))
        except (OSError, json.JSONDecodeError):
            continue
    settings_path = os.path.join(output_dir, RUN_SETTINGS)
    if os.path.isfile(settings_path):
        try:
            with open(settings_path, encoding="utf-8") as f:
                record.settings = json.load(f)
        except (OSError, json.JSONDecodeError):
            pass
    return record


def read_log(path: str) -> list[dict]:
    """The lines of a ``train_log.jsonl``; for a step logged twice (a resumed run), the later line wins per kind
    (training, evaluation, summary). A line that does not parse (torn by a crash) is skipped."""
    kept: dict[tuple[int, str], dict] = {}
    with open(path, encoding="utf-8") as f:
        for text in f:
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("step"), int):
                kind = "summary" if "train_runtime" in entry else "eval" if any(
                    k.startswith("eval_") for k in entry) else "train"
                kept[(entry["step"], kind)] = entry
    return [kept[key] for key in sorted(kept, key=lambda k: (k[0], ("train", "eval", "summary").index(k[1])))]


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG inlined as a data URI."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def spread(items: Sequence, count: int) -> list:
    """Up to ``count`` items evenly spaced over ``items``, first and last included."""
    if len(items) <= count:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)})
    return [items[i] for i in picks]


def _mean_of(history, key: str, part: slice) -> float | None:
    values = [float(h[key]) for h in history if h.get(key) is not None and "train_runtime" not in h][part]
    return sum(values) / len(values) if values else None


def summary_html(record: RunRecord) -> str:
    """Steps, time and the reward at the start and at the end of the run."""
    train = [h for h in record.history if "train_runtime" not in h and not any(k.startswith("eval_") for k in h)]
    if not train:
        return "<p>No training step logged yet.</p>"
    last = _last_step(train)
    done = next((h for h in record.history if "train_runtime" in h), None)
    rows = [("steps", f"{last}" + (f" of {record.max_steps}" if record.max_steps else "")
             + ("" if done else " (running, or stopped before the end)"))]
    if done:
        rows.append(("training time", f"{done['train_runtime'] / 60:.1f} min ({done['train_runtime'] / max(last, 1):.2f}"
                                      " s/step)"))
    tenth = max(1, len(train) // 10)
    for key, label in [("reward", "reward (total)")] + [(k, k[len("rewards/"):-len("/mean")])
                                                         for k in _reward_mean_keys(train)]:
        first, end = _mean_of(train, key, slice(0, tenth)), _mean_of(train, key, slice(-tenth, None))
        if first is not None:
            rows.append((label, f"{first:.3f} → {end:.3f}"))
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows)
    return (f"<table>{body}</table><p class=\"muted\">Rewards: mean over the first tenth of the logged steps → over "
            f"the last tenth. From {html.escape(record.history_source or '')}.</p>")


def _reward_mean_keys(history) -> list[str]:
    from vlmr1.viz.curves import reward_keys

    return reward_keys(history)


def curves_html(record: RunRecord) -> str:
    """The training figure (reward per function, length, KL, shares, loss, gradient norm)."""
    from vlmr1.viz.curves import plot_training

    if not record.history:
        return "<p>No training log yet.</p>"
    return img_tag(plot_training(record.history), "training curves")


def gallery_html(pictures: Sequence[tuple[int, str]], max_pictures: int = MAX_PICTURES) -> str:
    """Rollout pictures over time: a slider over up to ``max_pictures`` of them, the last one shown first."""
    if not pictures:
        return "<p>No rollout pictures (<code>--log_rollouts_steps 0</code>, or none drawn yet).</p>"
    chosen = spread(pictures, max_pictures)
    figures = []
    for step, path in chosen:
        with open(path, "rb") as f:
            png = f.read()
        figures.append(f'<figure data-step="step {step}">{img_tag(png, f"rollouts at step {step}")}</figure>')
    return (f'<div class="gallery"><div class="slider"><input type="range" min="0" max="{len(chosen) - 1}" '
            f'value="{len(chosen) - 1}"><span class="step"></span></div>{"".join(figures)}</div>'
            f'<p class="muted">Each row: a prompt, then its sampled completions as the task draws them (truth green, '
            f"answer red), with the total reward R, each reward function, the length and the answer. "
            f"{len(chosen)} of {len(pictures)} pictures; all are in <code>rollouts/</code>.</p>")


def eval_html(evals: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """One table per ``metrics.json``: a line per data file, a column per metric."""
    parts = []
    for label, summary in evals:
        per_file = summary.get("metrics") or {}
        names = list(dict.fromkeys(k for m in per_file.values() for k, v in m.items() if isinstance(v, int | float)))
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = "".join(
            f"<tr><td>{html.escape(os.path.basename(file))}</td>"
            + "".join(f"<td>{_fmt(metrics.get(n))}</td>" for n in names) + "</tr>" for file, metrics in per_file.items())
        parts.append(f"<h3>{html.escape(label)}</h3><p class=\"muted\">model {html.escape(str(summary.get('model', '')))}"
                     f", task {html.escape(str(summary.get('task', '')))}</p>"
                     f"<table><tr><th>data file</th>{head}</tr>{rows}</table>")
    return "".join(parts)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value if value is not None else ""))


def settings_html(settings: Mapping[str, Any]) -> str:
    return f"<pre>{html.escape(json.dumps(settings, indent=1, default=str))}</pre>" if settings else ""


def page(title: str, body: str) -> str:
    """A complete HTML page around ``body``."""
    return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n{SLIDER_JS}\n</body></html>\n")


def run_sections(record: RunRecord, title: str = "Training", level: int = 2) -> str:
    """The run's part of a page: summary and curves under ``title``, then rollouts, evaluation and settings (each
    only when there is data); ``level`` is the heading level of ``title``, the others sit one below it when
    ``title`` is not the page's own "Training"."""
    sub = level if title == "Training" else level + 1
    body = f"<h{level}>{html.escape(title)}</h{level}>{summary_html(record)}{curves_html(record)}"
    body += f"<h{sub}>Rollouts over time</h{sub}>{gallery_html(record.pictures)}"
    if record.evals:
        body += f"<h{sub}>Evaluation</h{sub}>{eval_html(record.evals)}"
    if record.settings:
        body += f"<h{sub}>Settings</h{sub}>{settings_html(record.settings)}"
    return body


def write_run_report(output_dir: str) -> str:
    """Write ``OUTPUT_DIR/report.html`` for a run folder; returns its path."""
    record = read_run(output_dir)
    name = os.path.basename(os.path.abspath(output_dir))
    model = record.settings.get("model_name_or_path")
    task = record.settings.get("task_type")
    intro = f"<h1>vlmr1 run: {html.escape(name)}</h1>"
    if model or task:
        intro += f"<p>{html.escape(str(model or ''))}" + (f", task <code>{html.escape(str(task))}</code>" if task else "")
        intro += "</p>"
    path = os.path.join(output_dir, "report.html")
    atomic_write(path, page(f"vlmr1 run: {name}", intro + run_sections(record)))
    return path


def main(argv: list[str] | None = None) -> str:
    """``vlmr1 report OUTPUT_DIR``: write the run's report.html and print its path."""
    p = argparse.ArgumentParser(prog="vlmr1 report", description=__doc__.split("\n\n")[0])
    p.add_argument("output_dir", help="a vlmr1 train --output_dir (finished or running)")
    args = p.parse_args(argv)
    try:
        path = write_run_report(args.output_dir)
    except FileNotFoundError as e:
        p.error(str(e))
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
