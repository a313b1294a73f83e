"""Tests for the reward registry, spec resolution, completion_text and the per_sample safety wrapper."""

import logging
import math
import textwrap
import uuid

import pytest

from vlmr1.rewards import (
    REWARD_REGISTRY,
    accuracy_reward,
    completion_text,
    format_reward,
    get_reward_function,
    get_reward_functions,
    list_rewards,
    per_sample,
    register_reward,
)
from vlmr1.rewards.registry import to_unit_interval, warning_counts

# Every kwarg TRL 1.16 GRPOTrainer._calculate_rewards passes besides the dataset columns.
TRL_KWARGS = dict(trainer_state=object(), log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None)


@pytest.fixture
def scratch_registry():
    """Remove whatever a test registers."""
    before = set(REWARD_REGISTRY)
    yield
    for name in set(REWARD_REGISTRY) - before:
        del REWARD_REGISTRY[name]


def unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_builtins_registered_with_trl_log_names():
    assert {"format", "accuracy"} <= set(list_rewards())
    assert REWARD_REGISTRY["format"] is format_reward and format_reward.__name__ == "format"
    assert REWARD_REGISTRY["accuracy"] is accuracy_reward and accuracy_reward.__name__ == "accuracy"


@pytest.mark.parametrize(
    "completion,text",
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "msg"}], "msg"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "ab"),
        (
            [
                {"role": "assistant", "content": "t1"},
                {"role": "tool", "content": "r"},
                {"role": "assistant", "content": "t2"},
            ],
            "t2",
        ),
        ([{"role": "user", "content": "u"}], "u"),
        ({"role": "assistant", "content": "d"}, "d"),
        ([], ""),
        (None, ""),
        ([{"role": "assistant", "content": None}], ""),
    ],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text


def test_full_trl_call_signature():
    completions = ["<think>a</think><answer>b</answer>", [{"role": "assistant", "content": "b"}]]
    out = format_reward(
        prompts=["p1", [{"role": "user", "content": "q"}]],
        completions=completions,
        completion_ids=[[1, 2], [3]],
        solution=["b", "b"],
        accu_reward_method=[None, "default"],
        task_type=["vqa", "vqa"],
        **TRL_KWARGS,
    )
    assert out == [1.0, 0.0]
    assert all(type(x) is float for x in out)


def test_per_sample_passes_row_and_prompt(scratch_registry):
    rows = []

    @per_sample
    def spy(text, **row):
        rows.append((text, row))
        return 0.5

    out = spy(
        prompts=["p0", "p1"],
        completions=["c0", "c1"],
        completion_ids=[[0], [1]],
        solution=["s0", "s1"],
        bbox=[[1, 2, 3, 4], None],
        **TRL_KWARGS,
    )
    assert out == [0.5, 0.5]
    assert rows[1] == ("c1", {"solution": "s1", "bbox": None, "prompt": "p1"})
    assert "trainer_state" not in rows[0][1] and "completion_ids" not in rows[0][1]


@pytest.mark.parametrize(
    "value,expected",
    [
        (5.0, 1.0),
        (-2, 0.0),
        (float("nan"), 0.0),
        (float("inf"), 1.0),
        (float("-inf"), 0.0),
        (True, 1.0),
        (0.25, 0.25),
        (None, 0.0),
        ("abc", 0.0),
        ("0.5", 0.5),
    ],
)
def test_to_unit_interval(value, expected):
    assert to_unit_interval(value)[0] == expected


def test_user_scorer_out_of_range_nan_and_raising_are_contained(caplog):
    name = unique("wild")
    values = iter([5.0, float("nan"), None, -1.0, 0.75])

    @per_sample(name=name)
    def wild(text, **row):
        if text == "boom":
            raise RuntimeError("scorer bug")
        return next(values)

    with caplog.at_level(logging.WARNING, logger="vlmr1.rewards.registry"):
        out = wild(completions=["a", "b", "c", "boom", "d", "e"])
    assert out == [1.0, 0.0, 0.0, 0.0, 0.0, 0.75]
    assert all(isinstance(x, float) and 0.0 <= x <= 1.0 and not math.isnan(x) for x in out)
    assert "RuntimeError" in caplog.text and "scorer bug" in caplog.text  # traceback logged
    assert warning_counts()[f"{name}:error"] == 1
    assert warning_counts()[f"{name}:clamped"] == 4


def test_error_logging_is_rate_limited(caplog):
    name = unique("always_fails")

    @per_sample(name=name)
    def always_fails(text, **row):
        raise ValueError("nope")

    with caplog.at_level(logging.WARNING, logger="vlmr1.rewards.registry"):
        out = always_fails(completions=["x"] * 50)
    assert out == [0.0] * 50
    assert warning_counts()[f"{name}:error"] == 50
    records = [r for r in caplog.records if name in r.getMessage()]
    assert 1 <= len(records) <= 10


def test_register_reward_decorator_sets_name(scratch_registry):
    name = unique("len")

    @register_reward(name)
    @per_sample
    def length_reward(text, **row):
        return min(len(text) / 10, 1.0)

    assert get_reward_function(name) is length_reward
    assert length_reward.__name__ == name
    assert length_reward(completions=["12345"]) == [0.5]


def test_register_reward_rejects_duplicates_and_bad_names(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format", lambda **kw: [])
    for bad in ["", "a b", "a,b", "a:b"]:
        with pytest.raises(ValueError):
            register_reward(bad, lambda **kw: [])


USER_MODULE = textwrap.dedent(
    """
    from vlmr1.rewards import per_sample

    def batch_len(completions, **kwargs):
        return [float(len(c)) for c in completions]

    @per_sample
    def is_short(text, **row):
        return len(text) < 5

    class Holder:
        @staticmethod
        def nested(completions, **kwargs):
            return [0.0 for _ in completions]

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = unique("user_rewards")
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mine.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}.mine"


def test_user_function_specs(user_module):
    fn = get_reward_function(f"{user_module}:batch_len")
    assert fn(completions=["abc"]) == [3.0]
    assert get_reward_function(f"{user_module}.batch_len") is fn  # dotted form also works
    assert get_reward_function(f"{user_module}:Holder.nested")(completions=["a"]) == [0.0]
    short = get_reward_function(f"{user_module}:is_short")
    assert short(completions=["abc", "abcdefg"]) == [1.0, 0.0]


def test_user_function_spec_errors(user_module):
    with pytest.raises(ValueError, match=r"no_such_mod.*Registered rewards: .*accuracy.*format"):
        get_reward_function("no_such_mod_xyz:fn")
    with pytest.raises(ValueError, match="has no attribute 'missing'"):
        get_reward_function(f"{user_module}:missing")
    with pytest.raises(ValueError, match="non-callable"):
        get_reward_function(f"{user_module}:NOT_CALLABLE")
    with pytest.raises(ValueError, match=r"Unknown reward 'acuracy'.*accuracy.*package.module:function"):
        get_reward_function("acuracy")


def test_get_reward_functions_string_and_list(user_module):
    fns = get_reward_functions("format, accuracy")
    assert fns == [format_reward, accuracy_reward]
    fns = get_reward_functions(["accuracy", f"{user_module}:batch_len", format_reward])
    assert [f.__name__ for f in fns] == ["accuracy", "batch_len", "format"]


def test_get_reward_functions_errors():
    with pytest.raises(ValueError, match="No reward"):
        get_reward_functions("  ")
    with pytest.raises(ValueError, match="more than once: format"):
        get_reward_functions("format accuracy format")


def test_builtin_rewards_pickle_by_reference():
    import pickle

    for fn in (format_reward, accuracy_reward):
        assert pickle.loads(pickle.dumps(fn)) is fn


def test_misaligned_column_is_passed_whole_and_logged(caplog):
    name = unique("misaligned")
    seen = []

    @per_sample(name=name)
    def spy(text, **row):
        seen.append(row["extra"])
        return 1.0

    with caplog.at_level(logging.WARNING, logger="vlmr1.rewards.registry"):
        assert spy(completions=["a", "b"], extra=[1, 2, 3]) == [1.0, 1.0]
    assert seen == [[1, 2, 3], [1, 2, 3]]
    assert "extra" in caplog.text
