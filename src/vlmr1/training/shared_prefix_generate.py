"""Prefill-once rollouts: each distinct prompt of a GRPO generation batch is prefilled once, not G times.

``prefill_once_generate`` wraps the ``generate`` call TRL's regular (transformers) branch makes. The distinct prompts
but their last token run once (``shared_prefix.run_prefix``: one vision-tower pass per image), their keys/values are
copied to the B = prompts x G rows, and the model's own ``generate`` goes on from that cache with the full
(B, prompt_len) ids and mask and the prompts' own positions (mRoPE, or the 1-D count of real tokens stock ``generate``
gives InternVL). It processes every row's last prompt token and then
samples exactly as the stock call: same logits processors, one draw per row and step in the same order, so with the
same seed the completions are the same up to floating-point differences of the logits (none in our fp32 CPU tests).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from vlmr1.models.families import get_family
from vlmr1.training import shared_prefix as sp


class _PreallocatedLayer(DynamicLayer):
    """Generation: the rows' prompt keys/values, in a buffer with room for ``capacity`` more tokens.

    Each step writes its keys/values in place and returns a view, where ``DynamicLayer`` concatenates the whole
    cache again at every step. Anything that replaced ``keys``/``values`` (crop, reorder, ...) is adopted as is.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.device, self.is_initialized, self.capacity = keys.device, True, capacity
        self._adopt(keys, values)

    def _adopt(self, keys, values):
        shape = (*keys.shape[:2], keys.size(2) + self.capacity, keys.size(3))
        self._keys, self._values = keys.new_empty(shape), values.new_empty(shape)
        self._keys[:, :, :keys.size(2)], self._values[:, :, :keys.size(2)] = keys, values
        self.keys, self.values = self._keys[:, :, :keys.size(2)], self._values[:, :, :keys.size(2)]

    def update(self, key_states, value_states, *args, **kwargs):
        start, end = self.keys.size(2), self.keys.size(2) + key_states.size(2)
        if self.keys.data_ptr() != self._keys.data_ptr() or end > self._keys.size(2):
            self._adopt(self.keys, self.values)  # replaced from outside, or full: a fresh buffer
        self._keys[:, :, start:end], self._values[:, :, start:end] = key_states, value_states
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values


def expanded_generation_cache(prefix_kv, rows: torch.Tensor, capacity: int | None) -> Cache:
    """A cache for ``generate`` holding ``rows``' copies of the prompt keys/values, with room for ``capacity``."""
    if capacity is None:
        return DynamicCache([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in prefix_kv])
    return Cache(layers=[_PreallocatedLayer(k.index_select(0, rows), v.index_select(0, rows), capacity)
                         for k, v in prefix_kv])


@contextmanager
def prefill_once_generate(model, num_images: list[int], note=None):
    """Within the block, ``model.generate`` prefills each distinct prompt once and samples from copies of its cache.

    Calls it cannot serve this way (no images, every prompt distinct, ...) go to the original ``generate`` unchanged.

    Args:
        model: the unwrapped model TRL generates with (possibly PEFT-wrapped).
        num_images: images per row of the batch about to be generated.
        note: called with the reason whenever a call goes to the original ``generate``.
    """
    original, had_own = model.generate, "generate" in vars(model)
    backbone = sp.backbone_of(model)
    family = get_family(model.config.model_type)

    def generate(input_ids=None, attention_mask=None, pixel_values=None, image_grid_thw=None, mm_token_type_ids=None,
                 **kwargs):
        call = dict(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                    image_grid_thw=image_grid_thw, mm_token_type_ids=mm_token_type_ids, **kwargs)
        reason = None
        if pixel_values is None:
            reason = "the batch has no images"
        elif family.image_layout == "grid" and (image_grid_thw is None or mm_token_type_ids is None):
            reason = "images come without image_grid_thw / mm_token_type_ids"
        elif attention_mask is None or input_ids.size(1) < 2:
            reason = "no attention mask or one-token prompts"
        reason = reason or sp.prompt_end_reason(input_ids, attention_mask, mm_token_type_ids,
                                                image_token_id=model.config.image_token_id)
        if reason is None:
            images = sp.BatchImages.of(model.config, input_ids, pixel_values, image_grid_thw, num_images)
            groups = sp.find_prompt_groups(input_ids, attention_mask, mm_token_type_ids, images)
            if groups.num_groups == input_ids.size(0):
                reason = "every prompt of the batch is distinct"
        if reason is not None:
            if note is not None:
                note(reason)
            return original(**call)

        firsts, rows = groups.first_rows, groups.row_to_group
        pixels, grids = images.select(firsts)
        ids, mask = input_ids[firsts], attention_mask[firsts]
        types = mm_token_type_ids[firsts] if mm_token_type_ids is not None else None
        positions = sp.prompt_positions(backbone, ids, mask, types, grids, mrope=True, generation=True)
        prefix_kv = sp.run_prefix(backbone, ids[:, :-1], mask[:, :-1], positions[..., :-1],
                                  types[:, :-1] if types is not None else None, pixels, grids)
        capacity = getattr(kwargs.get("generation_config"), "max_new_tokens", None)
        return original(input_ids=input_ids, attention_mask=attention_mask,
                        position_ids=positions.index_select(-2, rows),
                        cache=expanded_generation_cache(prefix_kv, rows, capacity), **kwargs)

    model.generate = generate
    try:
        yield
    finally:
        if had_own:
            model.generate = original
        else:
            del model.generate  # the class's method again
