"""DeepSpeed over several processes with batches that have no images on some ranks.

DeepSpeed needs every rank to run the same modules: ZeRO-3 gathers each module's weights with a collective as the
module runs, and ZeRO-2 reduces gradients in buckets filled in the order they become ready. A forward without
images skips the vision tower, so its rank issues different collectives from the others: the job hangs (NCCL) or
aborts with "Received data size doesn't match expected size" / "Detected mismatch between collectives" (gloo).
Transformers 5 and DeepSpeed 0.19 still do this (reproduced on CPU by ``tests/training/test_training_deepspeed.py``
with ZeRO-2 and ZeRO-3). The fix:

- ``vision_in_every_forward``: a forward that did not run the vision tower runs it on one blank image just before
  the language model and adds 0 x its output, so the backward reaches the vision weights on every rank as well.
- ``encode_blank_image``: generation encodes a batch's images once, before its first forward (transformers 5's
  ``mm_encoder_outputs``), so a rank without images encodes the blank image at that point. Only ZeRO-3 without
  ``--ds3_gather_for_generation`` needs it; otherwise generation runs on gathered weights.

Plain DDP needs neither (it tolerates unused parameters here; the 2-process CPU test covers it).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def deepspeed_ranks_stage(accelerator) -> int | None:
    """The ZeRO stage when this run is DeepSpeed over several processes, else None."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin.zero_stage if plugin is not None and accelerator.num_processes > 1 else None


def blank_image_inputs(vision_config, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel patches and grid of the smallest image the vision tower takes: one merged token's worth of patches."""
    merge = vision_config.spatial_merge_size
    temporal = vision_config.temporal_patch_size
    patch = vision_config.patch_size
    patch_dim = vision_config.in_channels * temporal * patch * patch
    pixels = torch.zeros(merge * merge, patch_dim, dtype=dtype, device=device)
    grid = torch.tensor([[1, merge, merge]], dtype=torch.long, device=device)
    return pixels, grid


def _zero_of(vision_output) -> torch.Tensor:
    """0 x the vision outputs the model itself would use (the merged image tokens, and Qwen3-VL's deepstack ones).

    Only those: ZeRO-3 also fetches weights in the backward, from hooks on the tensors that receive gradients, so
    the blank image's gradients must reach the same outputs as a real image's.
    """
    used = [vision_output.pooler_output, *(getattr(vision_output, "deepstack_features", None) or [])]
    return sum(tensor.float().sum() for tensor in used) * 0


def encode_blank_image(backbone) -> None:
    """Run the vision tower on the blank image, as generation would encode a batch's images before its prefill."""
    pixels, grid = blank_image_inputs(backbone.config.vision_config, backbone.visual.dtype, backbone.device)
    with torch.no_grad():
        backbone.get_image_features(pixels, grid, return_dict=True)


@contextmanager
def vision_in_every_forward(backbone):
    """Within the block, every forward of ``backbone`` (a ``<Family>Model``) runs its vision tower exactly once."""
    visual, language_model = backbone.visual, backbone.language_model
    state = {"ran": False}

    def start(module, args):
        state["ran"] = False

    def seen(module, args, output):
        state["ran"] = True

    def before_text(module, args, kwargs):
        if state["ran"] or kwargs.get("inputs_embeds") is None:
            return None
        embeds = kwargs["inputs_embeds"]
        pixels, grid = blank_image_inputs(backbone.config.vision_config, visual.dtype, embeds.device)
        kwargs["inputs_embeds"] = embeds + _zero_of(visual(pixels, grid_thw=grid, return_dict=True)).to(embeds.dtype)
        return args, kwargs

    # prepend: before DeepSpeed's own hook on the language model, so the module order it records (vision, then
    # text) is the one ranks with images record
    handles = [backbone.register_forward_pre_hook(start), visual.register_forward_hook(seen),
               language_model.register_forward_pre_hook(before_text, with_kwargs=True, prepend=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
