"""The tracker: trackio (local) when ``--report_to`` is not given and trackio is installed; explicit choices win."""

import importlib.util

import pytest

from vlmr1.training import tracking
from vlmr1.training.config import build_configs, read_flags


def training_args(*flags):
    return build_configs(read_flags(["--output_dir", "out", *flags]))[1]


def test_unset_report_to_means_trackio_when_installed_else_none(monkeypatch):
    pytest.importorskip("trackio")
    args = training_args()
    assert args.report_to == ["trackio"] and args.project == "vlmr1"
    assert tracking.dashboard_hint(args) == 'dashboard: trackio show --project "vlmr1"'
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    assert training_args().report_to == []


@pytest.mark.parametrize("flag, expected", [("none", []), ("tensorboard", ["tensorboard"]),
                                            ("wandb", ["wandb" if importlib.util.find_spec("wandb") else "trackio"])])
def test_an_explicit_report_to_wins(flag, expected):
    args = training_args("--report_to", flag)
    assert args.report_to == expected
    assert (tracking.dashboard_hint(args) is None) == (flag == "none")
