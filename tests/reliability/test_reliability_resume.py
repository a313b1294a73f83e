"""Resume verifies the newest checkpoint (weights readable, optimizer, scheduler and RNG states present) and falls back
to the previous complete one with a warning. The folders are laid out as transformers writes them, with real
safetensors and ``torch.save`` files."""

import json
import logging
import os

import torch
from safetensors.torch import save_file

from vlmr1.train import last_complete_checkpoint


def checkpoint(run, step, *, deepspeed=False, weights="model.safetensors"):
    folder = run / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if weights:
        save_file({"w": torch.randn(64, 64)}, str(folder / weights))
    if deepspeed:  # DeepSpeed keeps model and optimizer states in global_step*/
        (folder / f"global_step{step}").mkdir()
        torch.save({"m": 1}, folder / f"global_step{step}" / "mp_rank_00_model_states.pt")
        torch.save({"o": 1}, folder / f"global_step{step}" / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    else:
        torch.save({"state": {}}, folder / "optimizer.pt")
        torch.save({"last_epoch": step}, folder / "scheduler.pt")
    torch.save({"cpu": torch.random.get_rng_state()}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_complete_one(tmp_path, caplog):
    run = tmp_path / "run"
    checkpoint(run, 1)
    second = checkpoint(run, 2)
    third = checkpoint(run, 3)
    assert last_complete_checkpoint(str(run)) == str(third)
    cut(third / "model.safetensors")  # the state file is there: only reading the weights would notice
    cut(second / "optimizer.pt", 0.9)
    with caplog.at_level(logging.WARNING, logger="vlmr1.train"):
        assert last_complete_checkpoint(str(run)) == str(run / "checkpoint-1")
    warnings = [r.getMessage() for r in caplog.records]
    assert any(f"skipping {third}: model.safetensors is cut short" in w for w in warnings)
    assert any(f"skipping {second}: optimizer.pt is unreadable or cut short" in w for w in warnings)


def test_each_missing_piece_makes_a_checkpoint_incomplete(tmp_path):
    run = tmp_path / "run"
    first = checkpoint(run, 1)
    for step, remove in ((2, "scheduler.pt"), (3, "rng_state.pth"), (4, "model.safetensors"),
                         (5, "trainer_state.json")):
        os.remove(checkpoint(run, step) / remove)
    assert last_complete_checkpoint(str(run)) == str(first)
    # a run saved with --save_only_model has no optimizer state to need
    os.remove(first / "optimizer.pt")
    assert last_complete_checkpoint(str(run)) is None
    assert last_complete_checkpoint(str(run), needs_optimizer=False) == str(run / "checkpoint-3")


def test_sharded_lora_and_deepspeed_layouts(tmp_path):
    run = tmp_path / "run"
    lora = checkpoint(run, 1, weights="adapter_model.safetensors")
    assert last_complete_checkpoint(str(run)) == str(lora)
    zero3 = checkpoint(run, 2, deepspeed=True, weights=None)  # ZeRO-3 without gathered 16-bit weights
    assert last_complete_checkpoint(str(run)) == str(zero3)
    cut(zero3 / "global_step2" / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    assert last_complete_checkpoint(str(run)) == str(lora)
    sharded = checkpoint(run, 3, weights=None)
    save_file({"a": torch.ones(4)}, str(sharded / "model-00001-of-00002.safetensors"))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert last_complete_checkpoint(str(run)) == str(lora)  # the second shard is missing
    save_file({"b": torch.ones(4)}, str(sharded / "model-00002-of-00002.safetensors"))
    assert last_complete_checkpoint(str(run)) == str(sharded)
