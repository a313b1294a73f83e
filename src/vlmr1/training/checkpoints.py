"""Is a ``checkpoint-N`` folder complete enough to resume from? Checked without loading it (seconds, not minutes).

transformers writes a checkpoint as: weights, optimizer, scheduler, RNG states, then ``trainer_state.json``. A folder
can still be broken with its state file present (a full disk, a copy cut short, a file truncated by hand), and
resuming from it then crashes, or silently starts a fresh optimizer. :func:`checkpoint_problem` reads only headers and
sizes: a safetensors file must be as long as its header says, a ``torch.save`` file must be a whole zip archive.
"""

from __future__ import annotations

import glob
import json
import os
import struct
import zipfile

WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def safetensors_problem(path: str) -> str | None:
    """Why a ``.safetensors`` file is unreadable or shorter than its header declares, or None."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len > size - 8:
                return f"{os.path.basename(path)} is cut short (its header alone needs {header_len} bytes)"
            header = json.loads(f.read(header_len))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as e:
        return f"{os.path.basename(path)} is unreadable ({type(e).__name__})"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)),
              default=0)
    if size < 8 + header_len + end:
        return f"{os.path.basename(path)} is cut short ({size} of {8 + header_len + end} bytes)"
    return None


def torch_file_problem(path: str) -> str | None:
    """Why a ``torch.save`` file (a zip archive) is unreadable or cut short, or None."""
    try:
        with zipfile.ZipFile(path) as archive:  # reads the central directory at the very end of the file
            archive.infolist()
    except (OSError, zipfile.BadZipFile) as e:
        return f"{os.path.basename(path)} is unreadable or cut short ({type(e).__name__})"
    return None


def file_problem(path: str) -> str | None:
    return safetensors_problem(path) if path.endswith(".safetensors") else torch_file_problem(path)


def _weights_problem(folder: str, deepspeed_files: list[str]) -> str | None:
    for index_name in INDEX_FILES:
        index = os.path.join(folder, index_name)
        if os.path.isfile(index):
            try:
                with open(index) as f:
                    shards = sorted(set(json.load(f)["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError):
                return f"{index_name} is unreadable"
            for shard in shards:
                path = os.path.join(folder, shard)
                problem = file_problem(path) if os.path.isfile(path) else f"{shard} is missing"
                if problem:
                    return problem
            return None
    present = [os.path.join(folder, n) for n in WEIGHT_FILES if os.path.isfile(os.path.join(folder, n))]
    if not present and not any("model_states" in os.path.basename(p) for p in deepspeed_files):
        return "no weights file"
    return next((p for p in map(file_problem, present) if p), None)


def checkpoint_problem(folder: str, needs_optimizer: bool = True) -> str | None:
    """Why resuming from ``folder`` would fail or lose state, or None when it looks complete.

    Args:
        folder: a ``checkpoint-N`` folder.
        needs_optimizer: also require optimizer, scheduler and RNG states (False for ``--save_only_model`` runs).
    """
    try:
        with open(os.path.join(folder, "trainer_state.json")) as f:
            json.load(f)["global_step"]  # noqa: B018 - the check is that it reads
    except FileNotFoundError:
        return "its save did not finish (no trainer_state.json)"
    except (OSError, ValueError, KeyError, TypeError):
        return "trainer_state.json is unreadable"
    # DeepSpeed keeps model and optimizer states in global_step*/ (named in the `latest` file)
    deepspeed_files = sorted(glob.glob(os.path.join(folder, "global_step*", "*.pt")))
    problem = _weights_problem(folder, deepspeed_files)
    if problem or not needs_optimizer:
        return problem
    if not deepspeed_files:
        for name in ("optimizer.pt", "scheduler.pt"):
            path = os.path.join(folder, name)
            problem = torch_file_problem(path) if os.path.isfile(path) else f"{name} is missing"
            if problem:
                return problem
    else:
        problem = next((p for p in map(torch_file_problem, deepspeed_files) if p), None)
        if problem:
            return problem
    rng = sorted(glob.glob(os.path.join(folder, "rng_state*.pth")))
    if not rng:
        return "no RNG state (rng_state*.pth)"
    return next((p for p in map(torch_file_problem, rng) if p), None)
