"""Shared-prefix forward: each distinct prompt of a GRPO batch (its images and text) runs once, its G completions
run against that prompt's keys/values.

In GRPO every prompt is sampled G times, and for a VLM the prompt is mostly image tokens, so the stock forward runs
the vision tower and the whole prompt G times. Here, per call:

1. ``find_prompt_groups``: rows are grouped by prompt ids, mask, token types, image grids *and pixel values* (rows
   with the same question over two same-sized images have equal ids and grids). Rows need not be consecutive: TRL
   shuffles the generation batch before the training forward.
2. ``run_prefix``: one forward of every distinct prompt but its last token, through the backbone only, capturing each
   layer's keys/values (kept in the autograd graph).
3. The completions run through the model's own forward (TRL's fused log-prob head included, so temperature,
   entropy and the fp32 head behave as in the stock path) as ``[last prompt token, completion...]``, against a cache
   that gathers each row's prompt keys/values (``index_select``: gradients are summed over the group on backward).
   Their positions continue from the prompt's: the family's mRoPE (``get_rope_index``), or plain column indices
   where the stock forward uses 1-D positions.

Qwen3-VL's DeepStack adds vision-block features to the hidden states of its first decoder layers at the image
tokens. The prompt pass is the backbone's own forward over the images, so it adds them and the later layers' captured
keys/values carry them; completions hold no image tokens (``forward_reason``), so, as in the stock forward, nothing
is added to them.

A family opts in with ``Family.shared_prefix`` once these tests pass for it (``model_reason`` reads it). The model is
reached through ``backbone_of``, ``decoder_layers`` and, for mRoPE (``Family.mrope``), ``get_rope_index``. Images come
in one of two layouts (``Family.image_layout``, see :class:`BatchImages`): flat patches with ``image_grid_thw`` (Qwen,
GLM-4.1V), or InternVL's ``(tiles, 3, H, W)`` crops without grids, a row's tile count read from its image tokens.
InternVL's positions are 1-D, for which stock generation (mask cumsum) and the stock training forward (columns)
disagree on padding: each path here follows its stock counterpart.

The caches store nothing during the completion pass, so a layer replayed by (non-reentrant) gradient checkpointing
sees the same keys/values; ``cache_through_checkpointing`` tells the decoder layers so. Rollouts use the same pieces
in ``vlmr1.training.shared_prefix_generate``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate

import torch
from transformers.cache_utils import Cache, DynamicLayer

from vlmr1.models.families import get_family

SUPPORTED_ATTENTION = frozenset({"sdpa", "eager"})


@dataclass(frozen=True)
class PromptGroups:
    """Rows of a batch grouped by identical prompt (text, padding and images).

    Attributes:
        first_rows: the first row of each distinct prompt, in order of appearance.
        row_to_group: (batch,) long tensor, the group of each row.
    """

    first_rows: list[int]
    row_to_group: torch.Tensor

    @property
    def num_groups(self) -> int:
        return len(self.first_rows)

    def rows_of(self, groups: list[int]) -> list[int]:
        """The rows belonging to ``groups``, in batch order."""
        wanted = set(groups)
        return [row for row, g in enumerate(self.row_to_group.tolist()) if g in wanted]


@dataclass(frozen=True)
class BatchImages:
    """A batch's images as the model takes them, split by row.

    Attributes:
        pixel_values: the flat pixel rows: patches (grid layout) or ``(tiles, 3, H, W)`` tiles.
        image_grid_thw: each image's grid (grid layout), or None (tiles).
        spans: per batch row, (first image, end image, first pixel row, end pixel row).
    """

    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor | None
    spans: list[tuple[int, int, int, int]]

    @classmethod
    def of(cls, model_config, input_ids, pixel_values, image_grid_thw, num_images) -> BatchImages | None:
        """The images of a batch whose rows start with ``input_ids`` (their prompts), or None without images.

        In the grid layout a row's pixel rows are its images' ``grid.prod()``; with tiles (no grid) they are its
        image tokens over ``config.image_seq_length`` (TRL's ``num_tiles`` is not always passed: not when every image
        is one tile).
        """
        if pixel_values is None:
            return None
        if image_grid_thw is not None:
            image_bounds = [0, *accumulate(num_images)]
            rows_per_image = [0, *accumulate(image_grid_thw.prod(-1).tolist())]
            pixel_bounds = [rows_per_image[b] for b in image_bounds]
        else:
            tiles = (input_ids == model_config.image_token_id).sum(1) // model_config.image_seq_length
            image_bounds = [0, *accumulate(num_images or [0] * input_ids.size(0))]
            pixel_bounds = [0, *accumulate(tiles.tolist())]
            if pixel_bounds[-1] != pixel_values.size(0):
                raise ValueError(f"{pixel_bounds[-1]} tiles in the prompts' image tokens, {pixel_values.size(0)} "
                                 "in pixel_values")
        spans = [(image_bounds[i], image_bounds[i + 1], pixel_bounds[i], pixel_bounds[i + 1])
                 for i in range(input_ids.size(0))]
        return cls(pixel_values, image_grid_thw, spans)

    def grid_key(self, row: int) -> bytes:
        """The row's image grids (empty for tiles), part of the prompt's identity."""
        if self.image_grid_thw is None:
            return b""
        return self.image_grid_thw[self.spans[row][0]:self.spans[row][1]].cpu().numpy().tobytes()

    def same_pixels(self, a: int, b: int) -> bool:
        (_, _, a0, a1), (_, _, b0, b1) = self.spans[a], self.spans[b]
        return a1 - a0 == b1 - b0 and torch.equal(self.pixel_values[a0:a1], self.pixel_values[b0:b1])

    def select(self, rows: list[int]):
        """The pixel rows and grids of ``rows``' images, in that order; (None, None) when they have none."""
        if all(self.spans[r][2] == self.spans[r][3] for r in rows):  # text-only prompts: no (empty) image batch
            return None, None
        pixels = torch.cat([self.pixel_values[self.spans[r][2]:self.spans[r][3]] for r in rows])
        if self.image_grid_thw is None:
            return pixels, None
        return pixels, torch.cat([self.image_grid_thw[self.spans[r][0]:self.spans[r][1]] for r in rows])


def find_prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, mm_token_type_ids=None,
                       images: BatchImages | None = None) -> PromptGroups:
    """Group the rows whose prompts are identical: same ids, mask, token types, image grids and pixels.

    Args:
        prompt_ids, prompt_mask: (batch, prompt_len), left-padded as TRL pads them.
        mm_token_type_ids: (batch, >= prompt_len) or None; only the prompt columns are compared.
        images: the batch's images (:class:`BatchImages`), or None.
    """
    prompt_len = prompt_ids.size(1)
    columns = [prompt_ids.masked_fill(prompt_mask == 0, -1), prompt_mask]
    if mm_token_type_ids is not None:
        columns.append(mm_token_type_ids[:, :prompt_len])
    keys = torch.cat([c.long() for c in columns], dim=1).cpu().numpy()

    buckets: dict[tuple, list[int]] = {}
    first_rows: list[int] = []
    row_to_group: list[int] = []
    for row in range(prompt_ids.size(0)):
        key = (keys[row].tobytes(), images.grid_key(row) if images is not None else b"")
        candidates = buckets.setdefault(key, [])
        for group in candidates:  # ids and grids agree; the pixels decide
            if images is None or images.same_pixels(row, first_rows[group]):
                row_to_group.append(group)
                break
        else:
            candidates.append(len(first_rows))
            row_to_group.append(len(first_rows))
            first_rows.append(row)
    return PromptGroups(first_rows, torch.tensor(row_to_group, device=prompt_ids.device))


def backbone_of(model):
    """The ``<Family>Model`` (vision tower + text decoder, no LM head) inside a possibly PEFT-wrapped model."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    return model.model  # transformers 5 VLMs keep the backbone under `.model` (their base_model_prefix)


def decoder_layers(backbone):
    """The text decoder's layers (one cache layer each); ``language_model.layers`` in every family so far."""
    return backbone.language_model.layers


def prompt_positions(backbone, prompt_ids, prompt_mask, mm_token_type_ids, image_grid_thw, mrope: bool,
                     generation: bool = False):
    """Positions of the prompts as the stock forward (or, with ``generation``, stock ``generate``) computes them.

    M-RoPE families: (3, rows, prompt_len); with ``mrope`` (token types and grids given) the family's
    ``get_rope_index``, otherwise column indices, padding included, as the stock forward falls back to. 1-D families
    (``Family.mrope`` False): (rows, prompt_len) columns, or for generation the count of real tokens before each
    (``GenerationMixin._prepare_position_ids_for_generation``).
    """
    if not get_family(backbone).mrope:
        if generation:
            return (prompt_mask.long().cumsum(-1) - 1).masked_fill(prompt_mask == 0, 0)
        return torch.arange(prompt_ids.size(1), device=prompt_ids.device).expand(prompt_ids.size(0), -1)
    if mrope:
        positions, _ = backbone.get_rope_index(prompt_ids, mm_token_type_ids=mm_token_type_ids,
                                               image_grid_thw=image_grid_thw, attention_mask=prompt_mask)
        return positions
    columns = torch.arange(prompt_ids.size(1), device=prompt_ids.device)
    return columns.view(1, 1, -1).expand(3, prompt_ids.size(0), -1)


class _CaptureLayer(DynamicLayer):
    """Prompt pass: keeps the layer's keys/values (replacing, never appending, so a checkpoint replay is harmless)."""

    def update(self, key_states, value_states, *args, **kwargs):
        self.keys, self.values, self.is_initialized = key_states, value_states, True
        return key_states, value_states

    def get_seq_length(self) -> int:
        return 0  # the prompt pass itself starts from nothing


class _SharedPrefixLayer(DynamicLayer):
    """Completion pass: every row's prompt keys/values (gathered from its group) followed by the new ones.

    Nothing is stored, so a replayed layer sees exactly what the first run saw.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: torch.Tensor):
        super().__init__()
        self.keys, self.values, self.rows, self.is_initialized = keys, values, rows, True
        self.device = keys.device

    def update(self, key_states, value_states, *args, **kwargs):
        keys = torch.cat([self.keys.index_select(0, self.rows), key_states], dim=-2)
        values = torch.cat([self.values.index_select(0, self.rows), value_states], dim=-2)
        return keys, values


@contextmanager
def cache_through_checkpointing(backbone):
    """Let the decoder layers keep our cache under gradient checkpointing (safe: our caches are replay-safe)."""
    layers = list(decoder_layers(backbone))
    for layer in layers:
        layer._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        for layer in layers:
            del layer._can_checkpoint_with_cache  # back to the class default


def run_prefix(backbone, prefix_ids, prefix_mask, positions, mm_token_type_ids=None, pixel_values=None,
               image_grid_thw=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Run the prompts (without their last token) once; returns each decoder layer's (keys, values)."""
    capture = Cache(layers=[_CaptureLayer() for _ in decoder_layers(backbone)])
    images = {"pixel_values": pixel_values, "image_grid_thw": image_grid_thw, "mm_token_type_ids": mm_token_type_ids}
    backbone(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=positions, cache=capture, use_cache=False,
             **{k: v for k, v in images.items() if v is not None})  # only what is set: not every family takes each
    return [(layer.keys, layer.values) for layer in capture.layers]


def shared_prefix_cache(prefix_kv, rows: torch.Tensor) -> Cache:
    """A read-only cache in which batch row i sees the prompt keys/values of group ``rows[i]``."""
    return Cache(layers=[_SharedPrefixLayer(k, v, rows) for k, v in prefix_kv])


def chunk_groups(groups: PromptGroups, batch_size: int | None) -> list[list[int]]:
    """Split the groups into chunks of at most ``batch_size`` rows (a larger group makes a chunk of its own)."""
    sizes = torch.bincount(groups.row_to_group, minlength=groups.num_groups).tolist()
    chunks, current, rows = [], [], 0
    for group, size in enumerate(sizes):
        if current and batch_size is not None and rows + size > batch_size:
            chunks.append(current)
            current, rows = [], 0
        current.append(group)
        rows += size
    return chunks + [current]


def shared_prefix_logps(model, backbone, input_ids, attention_mask, logits_to_keep: int, groups: PromptGroups, *,
                        batch_size=None, compute_entropy=False, images: BatchImages | None = None,
                        mm_token_type_ids=None):
    """Per-token log-probs (and entropies) of the completions, as TRL's ``_get_per_token_logps_and_entropies``.

    Args:
        model: the model to call for the completions (possibly DDP/PEFT-wrapped, with TRL's fused LM head).
        backbone: its ``<Family>Model`` (see ``backbone_of``), used for the prompt pass and positions.
        input_ids, attention_mask: (batch, prompt_len + logits_to_keep), prompts left-padded.
        groups: ``find_prompt_groups`` of the batch's prompts.
        batch_size: most rows per chunk (whole groups per chunk); None: one chunk.
        images: the batch's images, or None.

    Returns:
        (logps, entropies or None), each (batch, logits_to_keep), in the batch's row order.
    """
    all_rows, all_logps, all_entropies = [], [], []
    with cache_through_checkpointing(backbone):
        for chunk in chunk_groups(groups, batch_size):
            rows = groups.rows_of(chunk)
            outputs = _chunk_forward(model, backbone, input_ids, attention_mask, logits_to_keep, groups, chunk, rows,
                                     mm_token_type_ids, images)
            all_rows += rows
            all_logps.append(outputs.log_probs)
            if compute_entropy:
                all_entropies.append(outputs.entropy)

    device = input_ids.device
    order = torch.empty(len(all_rows), dtype=torch.long, device=device)
    order[torch.tensor(all_rows, device=device)] = torch.arange(len(all_rows), device=device)
    logps = torch.cat(all_logps).index_select(0, order)
    entropies = torch.cat(all_entropies).index_select(0, order) if compute_entropy else None
    return logps, entropies


def _chunk_forward(model, backbone, input_ids, attention_mask, logits_to_keep, groups, chunk, rows,
                   mm_token_type_ids, images):
    """Prompt pass for ``chunk``'s groups, then the completion pass for their ``rows``; the fused-head outputs."""
    device = input_ids.device
    prompt_len = input_ids.size(1) - logits_to_keep
    firsts = [groups.first_rows[g] for g in chunk]
    local = {g: i for i, g in enumerate(chunk)}  # each row's prompt, numbered within the chunk
    to_prompt = torch.tensor([local[g] for g in groups.row_to_group[rows].tolist()], device=device)

    prompt_ids, prompt_mask = input_ids[firsts, :prompt_len], attention_mask[firsts, :prompt_len]
    prompt_types = mm_token_type_ids[firsts, :prompt_len] if mm_token_type_ids is not None else None
    pixels, grids = images.select(firsts) if images is not None else (None, None)
    # as the stock forward decides
    mrope = mm_token_type_ids is not None and images is not None and images.image_grid_thw is not None
    positions = prompt_positions(backbone, prompt_ids, prompt_mask, prompt_types, grids, mrope)
    prefix_kv = run_prefix(backbone, prompt_ids[:, :-1], prompt_mask[:, :-1], positions[..., :-1],
                           None if prompt_types is None else prompt_types[:, :-1], pixels, grids)

    # [last prompt token, completion]: the last prompt token's output scores the first completion token.
    suffix_ids = input_ids[rows, prompt_len - 1:]
    suffix_mask = attention_mask[rows, prompt_len - 1:]
    suffix_positions = positions[..., -1:].index_select(-2, to_prompt) + torch.arange(logits_to_keep + 1,
                                                                                       device=device)
    labels = suffix_ids.masked_fill(suffix_mask == 0, -100)
    return model(input_ids=suffix_ids, attention_mask=attention_mask[rows], position_ids=suffix_positions,
                 cache=shared_prefix_cache(prefix_kv, to_prompt), labels=labels, fused_lm_head=True)


def prompt_end_reason(input_ids, attention_mask, mm_token_type_ids=None, prompt_len: int | None = None,
                      image_token_id: int | None = None) -> str | None:
    """Why the prompts' last column cannot start the completion pass, or None (it must be a real, text token)."""
    last = (prompt_len or input_ids.size(1)) - 1
    if not bool(attention_mask[:, last].all()):
        return "the prompts are not left-padded"
    if mm_token_type_ids is not None and bool(mm_token_type_ids[:, last].any()):
        return "a prompt ends with an image token"
    if image_token_id is not None and bool((input_ids[:, last] == image_token_id).any()):
        return "a prompt ends with an image token"
    return None


def model_reason(model) -> str | None:
    """Why ``model`` (possibly PEFT-wrapped) cannot use the shared prefix at all, or None."""
    config = model.config
    try:
        family = get_family(config.model_type)
    except ValueError:
        return f"model type {config.model_type!r} has no registered family"
    if not family.shared_prefix:
        return f"the {config.model_type!r} family does not support it"
    text_config = config.get_text_config()
    if text_config._attn_implementation not in SUPPORTED_ATTENTION:
        return f"attention {text_config._attn_implementation!r} is not one of {sorted(SUPPORTED_ATTENTION)}"
    if "sliding_attention" in (getattr(text_config, "layer_types", None) or []):
        return "the text model has sliding-window layers"
    return None


def forward_reason(model, input_ids, attention_mask, logits_to_keep, *, compute_aux_loss=False, pixel_values=None,
                   image_grid_thw=None, num_images=None, mm_token_type_ids=None, reentrant_checkpointing=False,
                   **other_inputs) -> str | None:
    """Why this log-prob call cannot use the shared prefix, or None. ``other_inputs``: TRL's other vision inputs
    (InternVL's ``num_tiles`` is read from the image tokens instead)."""
    family = get_family(model.config.model_type)
    if compute_aux_loss:
        return "the MoE auxiliary loss is requested"
    others = sorted(k for k, v in other_inputs.items()
                    if v is not None and not (k == "num_tiles" and family.image_layout == "tiles"))
    if others:
        return f"inputs {others} are not supported"
    if pixel_values is not None and num_images is None:
        return "images come without num_images"
    if pixel_values is not None and (image_grid_thw is None) != (family.image_layout == "tiles"):
        return f"images do not come in the {family.model_type!r} family's {family.image_layout} layout"
    if not 0 < logits_to_keep < input_ids.size(1) - 1:
        return "the prompts are shorter than two tokens"
    if reentrant_checkpointing and torch.is_grad_enabled():
        return "reentrant gradient checkpointing would drop the prompt's gradients"
    # Image placeholders in a completion (tool images) need pixels there; other tokens are text to both paths.
    in_completion = input_ids[:, -logits_to_keep:] == model.config.image_token_id
    if mm_token_type_ids is not None:
        in_completion |= mm_token_type_ids[:, -logits_to_keep:] != 0
    if bool(in_completion.any()):
        return "completions hold image tokens (tool images)"
    return prompt_end_reason(input_ids, attention_mask, mm_token_type_ids, input_ids.size(1) - logits_to_keep,
                             model.config.image_token_id)
