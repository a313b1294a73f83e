"""DeepSpeed over several processes with batches that have no images on some ranks.

DeepSpeed needs every rank to run the same modules: ZeRO-3 gathers each module's weights with a collective as the
module runs, and ZeRO-2 reduces gradients in buckets filled in the order they become ready. A forward without
images skips the vision tower, so its rank issues different collectives from the others: the job hangs (NCCL) or
aborts with "Received data size doesn't match expected size" / "Detected mismatch between collectives" (gloo).
Transformers 5 and DeepSpeed 0.19 still do this (reproduced on CPU by ``tests/training/test_training_deepspeed.py``
with ZeRO-2 and ZeRO-3). The fix:

- ``vision_in_every_forward``: a forward that did not run the vision tower runs it on one blank image (the family's
  ``blank_image_inputs``: a merged patch, or one InternVL tile) just before the language model and adds 0 x its
  output, so the backward reaches the vision weights (and a separate projector's) on every rank as well.
- ``encode_blank_image``: generation encodes a batch's images once, before its first forward (transformers 5's
  ``mm_encoder_outputs``), so a rank without images encodes the blank image at that point. Only ZeRO-3 without
  ``--ds3_gather_for_generation`` needs it; otherwise generation runs on gathered weights.

Plain DDP needs neither (it tolerates unused parameters here; the 2-process CPU test covers it).

Separately, ``register_external_parameters`` tells ZeRO-3 (on any number of processes) about weights a module reads
without calling their owner (GLM-4.1V's vision position embeddings), which it would otherwise leave partitioned.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from vlmr1.models.families import get_family


def deepspeed_ranks_stage(accelerator) -> int | None:
    """The ZeRO stage when this run is DeepSpeed over several processes, else None."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return plugin.zero_stage if plugin is not None and accelerator.num_processes > 1 else None


def register_external_parameters(*models) -> None:
    """Under ZeRO-3, register each model's ``Family.external_parameters`` with DeepSpeed (models may be None, or
    wrapped in a DeepSpeed engine)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return
    import deepspeed

    for model in filter(None, models):
        model = getattr(model, "module", model)  # a DeepSpeed engine (TRL's reference model)
        for module, parameter in get_family(model).external_parameters(model):
            deepspeed.zero.register_external_parameter(module, parameter)


def _zero_of(image_features) -> torch.Tensor:
    """0 x the vision outputs the model itself would use (the image tokens, and Qwen3-VL's deepstack ones).

    Only those: ZeRO-3 also fetches weights in the backward, from hooks on the tensors that receive gradients, so
    the blank image's gradients must reach the same outputs as a real image's.
    """
    used = _tensors(image_features.pooler_output) + _tensors(getattr(image_features, "deepstack_features", None))
    return sum(tensor.float().sum() for tensor in used) * 0


def _tensors(value) -> list[torch.Tensor]:
    """The tensors in ``value``, through the (nested) per-image splits ``get_image_features`` returns."""
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for item in value for t in _tensors(item)] if isinstance(value, (list, tuple)) else []


def _blank_image_features(backbone):
    """The backbone's image features (vision tower and projector) of its family's blank image."""
    blank = get_family(backbone.config.model_type).blank_image_inputs(backbone)
    return backbone.get_image_features(**blank, return_dict=True)


def encode_blank_image(backbone) -> None:
    """Run the vision tower on the blank image, as generation would encode a batch's images before its prefill."""
    with torch.no_grad():
        _blank_image_features(backbone)


@contextmanager
def vision_in_every_forward(backbone):
    """Within the block, every forward of ``backbone`` (a ``<Family>Model``) runs its vision tower exactly once."""
    visual = get_family(backbone.config.model_type).vision_tower(backbone)
    language_model = backbone.language_model
    state = {"ran": False}

    def start(module, args):
        state["ran"] = False

    def seen(module, args, output):
        state["ran"] = True

    def before_text(module, args, kwargs):
        if state["ran"] or kwargs.get("inputs_embeds") is None:
            return None
        embeds = kwargs["inputs_embeds"]
        kwargs["inputs_embeds"] = embeds + _zero_of(_blank_image_features(backbone)).to(embeds.dtype)
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
