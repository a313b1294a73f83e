"""``vlmr1 data check``: list every problem in jsonl training data, with file:line, before a run meets it.

    vlmr1 data check --data_file_paths a.jsonl:b.jsonl --image_folders imgs_a:imgs_b [--task_type rec]

Training stops at the first 20 bad lines; this command reads everything and prints **every** problem, then a summary
by kind, and exits with status 1 when there is any. Kinds:

* ``bad_file``: a data file is missing, empty, or a JSON array instead of JSON Lines;
* ``bad_json``: a line is not a JSON object (or not UTF-8);
* ``bad_line``: a line breaks the schema (conversations, roles, ``image`` type; see :mod:`vlmr1.data.schema`);
* ``image_count``: the number of ``<image>`` placeholders differs from the number of images;
* ``empty_answer``: the ``gpt`` answer (or its ``<answer>`` content) is empty;
* ``unknown_method``: ``accu_reward_method`` (or ``--reward_method``) names no registered accuracy method;
* ``unparsable_answer``: the task cannot read the answer (a box for ``rec``, a contour for ``seg``: its
  ``check_row``), or the accuracy method finds no option letter / yes-no / number (``mcq`` / ``yes_no`` / ``numeric``);
* ``bad_field``: a field the task's rewards need is missing or invalid (``bbox`` for rec, ``mask`` for seg,
  ``objects`` for od: its ``check_row``);
* ``missing_image`` / ``corrupt_image``: an image is not there, or does not decode completely (the same decode
  train and eval run before the model loads, :mod:`vlmr1.data.images`; good files are remembered by size and mtime).

Line parsing reuses :mod:`vlmr1.data.loading`; the answer and field checks are the task's own
(:meth:`vlmr1.tasks.Task.check_row`, built on its reward's parser), so "parses here" means "the reward can score it".
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from vlmr1.arguments import CommandParser, integer
from vlmr1.data.images import image_problems
from vlmr1.data.loading import SourceFile, pair_sources, read_samples
from vlmr1.data.schema import DataError

KINDS = ("bad_file", "bad_json", "bad_line", "image_count", "empty_answer", "unknown_method", "unparsable_answer",
         "bad_field", "missing_image", "corrupt_image")


@dataclass(frozen=True)
class Problem:
    """One finding: where (line None for a whole file), what kind, what is wrong (and how to fix it)."""

    path: str
    line: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class CheckReport:
    """Everything :func:`check_sources` found."""

    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    images: int = 0

    def counts(self) -> Counter:
        """Problems per kind."""
        return Counter(p.kind for p in self.problems)


def _with_fix(error: DataError) -> str:
    return error.problem + (f" (fix: {error.fix})" if error.fix else "")


def method_problems(method: str | None, answer: str) -> list[tuple[str, str]]:
    """Problems of the accuracy method of a line: unknown, or a gold answer that method cannot read.

    Args:
        method: the line's ``accu_reward_method`` (or the file's ``--reward_method``); None means ``default``.
        answer: the gold answer, already stripped of ``<answer>`` tags ("" skips the parse: reported as empty).

    Returns:
        ``(kind, message)`` pairs.
    """
    from vlmr1.rewards.accuracy import validate_accuracy_method
    from vlmr1.rewards.parsing import extract_choice, extract_last_number, extract_yes_no

    try:
        key = validate_accuracy_method(method)
    except ValueError as e:
        return [("unknown_method", str(e))]
    readers = {"mcq": (extract_choice, "an option letter (A-Z)"), "yes_no": (extract_yes_no, "yes or no"),
               "numeric": (extract_last_number, "a number")}
    if answer and key in readers and readers[key][0](answer) is None:
        return [("unparsable_answer", f"accu_reward_method {key!r} finds no {readers[key][1]} in the answer "
                                      f"{answer!r:.80}; every completion would score 0")]
    return []


def check_sources(sources: Sequence[SourceFile], task_type: str = "default", workers: int | None = None) -> CheckReport:
    """Check every line and image of the given files.

    Args:
        sources: from :func:`vlmr1.data.loading.pair_sources`.
        task_type: the task whose ``check_row`` reads the answers and fields (a name or ``module:Class``).
        workers: threads decoding images (the decoders release the GIL).

    Returns:
        The :class:`CheckReport`; problems are in file order, then line order.
    """
    from vlmr1.rewards.parsing import answer_or_text
    from vlmr1.tasks import get_task

    task = get_task(task_type)
    report = CheckReport(files=len(sources))
    found: list[tuple[int, int, Problem]] = []  # (file index, line, problem): sorted at the end
    images: dict[str, list[tuple[int, str, int]]] = {}  # image path -> the lines using it
    for index, source in enumerate(sources):
        errors: list[DataError] = []
        try:
            samples = read_samples(source, errors=errors)
        except DataError as e:
            found.append((index, 0, Problem(source.path, e.line, "bad_file", _with_fix(e))))
            continue
        report.lines += len(samples) + len(errors)
        found.extend((index, e.line or 0, Problem(source.path, e.line, e.kind, _with_fix(e))) for e in errors)
        for line_no, sample in samples:
            answer = answer_or_text(sample.solution)  # "" for "<answer> </answer>": reported once, not re-parsed
            kinds = [] if answer else [("empty_answer", "the <answer> content of the 'gpt' answer is empty")]
            kinds += method_problems(sample.accu_reward_method or source.reward_method, answer)
            kinds += task.check_row(answer, sample.extra)
            found.extend((index, line_no, Problem(source.path, line_no, k, m)) for k, m in kinds)
            for image in sample.images:
                images.setdefault(os.path.join(source.image_folder, image), []).append((index, source.path, line_no))
    report.images = len(images)
    # each file decoded once, however many lines use it; files remembered as good are only stat'ed
    for path, result in image_problems(list(images), workers).items():
        found.extend((i, n, Problem(p, n, *result)) for i, p, n in images[path])
    found.sort(key=lambda item: (item[0], item[1]))  # stable: within a line, the order the checks ran
    report.problems = [problem for _, _, problem in found]
    return report


def format_summary(report: CheckReport, task_type: str) -> str:
    """The closing summary: what was checked and the problems per kind."""
    head = (f"checked {report.lines} line(s) in {report.files} file(s) and {report.images} image(s) for task "
            f"{task_type!r}: ")
    if not report.problems:
        return head + "no problems found"
    counts = report.counts()
    rows = [f"  {kind:18s} {counts[kind]}" for kind in KINDS if counts[kind]]
    return head + f"{len(report.problems)} problem(s)\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``vlmr1 data check``: print every problem (file:line) and a summary.

    Args:
        argv: command-line arguments (without ``data check``).

    Returns:
        0 when the data has no problem.

    Raises:
        SystemExit: status 1 when any problem was found (2 for bad arguments), so the shell sees a failure.
    """
    p = CommandParser(prog="vlmr1 data check", description=__doc__.split("\n\n")[0])
    p.add_argument("--data_file_paths", "--data-file-paths", required=True, help="a.jsonl[:b.jsonl], as for train")
    p.add_argument("--image_folders", "--image-folders", default=None,
                   help="one folder per data file (':'-separated), or one for all")
    p.add_argument("--task_type", "--task-type", default="default",
                   help="the task whose answers and fields are checked: default, rec, seg, od, gui, point, ... or "
                        "package.module:TaskClass")
    p.add_argument("--reward_method", "--reward-method", default=None,
                   help="default accuracy method for lines without accu_reward_method, as for train")
    p.add_argument("--workers", type=integer(1, 256), default=min(32, (os.cpu_count() or 1) + 4),
                   help="image decoding threads")
    args = p.parse_args(argv)
    from vlmr1.tasks import get_task

    try:
        sources = pair_sources(args.data_file_paths, args.image_folders, args.reward_method)
        get_task(args.task_type)
    except (DataError, ValueError) as e:
        p.error(str(e))
    report = check_sources(sources, args.task_type, args.workers)
    for problem in report.problems:
        print(problem)
    print(format_summary(report, args.task_type))
    if report.problems:
        raise SystemExit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
