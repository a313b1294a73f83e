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
reached through ``backbone_of``, ``decoder_layers`` and, for mRoPE, ``get_rope_index``, and images are flat patches
with ``image_grid_thw`` (the Qwen layout, which GLM-4.1V shares). InternVL differs in both: tiles without grids, and
1-D positions, for which stock generation (mask cumsum) and the stock training forward (columns) disagree on padding.

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


def image_spans(image_grid_thw: torch.Tensor, num_images: list[int]) -> list[tuple[int, int, int, int]]:
    """Per row: (first image, end image, first pixel row, end pixel row) in the flat image tensors."""
    image_bounds = [0, *accumulate(num_images)]
    pixel_bounds = [0, *accumulate(image_grid_thw.prod(-1).tolist())]
    return [(image_bounds[i], image_bounds[i + 1], pixel_bounds[image_bounds[i]], pixel_bounds[image_bounds[i + 1]])
            for i in range(len(num_images))]


def find_prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, mm_token_type_ids=None,
                       pixel_values=None, image_grid_thw=None, num_images=None) -> PromptGroups:
    """Group the rows whose prompts are identical: same ids, mask, token types, image grids and pixels.

    Args:
        prompt_ids, prompt_mask: (batch, prompt_len), left-padded as TRL pads them.
        mm_token_type_ids: (batch, >= prompt_len) or None; only the prompt columns are compared.
        pixel_values, image_grid_thw, num_images: the batch's flat images (Qwen layout) and images per row.
    """
    prompt_len = prompt_ids.size(1)
    columns = [prompt_ids.masked_fill(prompt_mask == 0, -1), prompt_mask]
    if mm_token_type_ids is not None:
        columns.append(mm_token_type_ids[:, :prompt_len])
    keys = torch.cat([c.long() for c in columns], dim=1).cpu().numpy()
    spans = image_spans(image_grid_thw, num_images) if pixel_values is not None else None
    grids = image_grid_thw.cpu().numpy() if spans is not None else None

    buckets: dict[tuple, list[int]] = {}
    first_rows: list[int] = []
    row_to_group: list[int] = []
    for row in range(prompt_ids.size(0)):
        key = (keys[row].tobytes(), grids[spans[row][0]:spans[row][1]].tobytes() if spans else b"")
        candidates = buckets.setdefault(key, [])
        for group in candidates:  # ids and grids agree; the pixels decide
            if spans is None or _same_pixels(pixel_values, spans[row], spans[first_rows[group]]):
                row_to_group.append(group)
                break
        else:
            candidates.append(len(first_rows))
            row_to_group.append(len(first_rows))
            first_rows.append(row)
    return PromptGroups(first_rows, torch.tensor(row_to_group, device=prompt_ids.device))


def _same_pixels(pixel_values: torch.Tensor, a: tuple, b: tuple) -> bool:
    return torch.equal(pixel_values[a[2]:a[3]], pixel_values[b[2]:b[3]])


def select_images(pixel_values, image_grid_thw, num_images, rows: list[int]):
    """The pixel rows and grids of ``rows``' images, in that order; (None, None) when they have none."""
    if pixel_values is None:
        return None, None
    spans = image_spans(image_grid_thw, num_images)
    if all(spans[r][0] == spans[r][1] for r in rows):  # text-only prompts: no (empty) image batch for the model
        return None, None
    pixels = [pixel_values[spans[r][2]:spans[r][3]] for r in rows]
    grids = [image_grid_thw[spans[r][0]:spans[r][1]] for r in rows]
    return torch.cat(pixels), torch.cat(grids)


def backbone_of(model):
    """The ``<Family>Model`` (vision tower + text decoder, no LM head) inside a possibly PEFT-wrapped model."""
    model = model.get_base_model() if hasattr(model, "get_base_model") else model
    return model.model  # transformers 5 VLMs keep the backbone under `.model` (their base_model_prefix)


def decoder_layers(backbone):
    """The text decoder's layers (one cache layer each); ``language_model.layers`` in every family so far."""
    return backbone.language_model.layers


def prompt_positions(backbone, prompt_ids, prompt_mask, mm_token_type_ids, image_grid_thw, mrope: bool):
    """(3, rows, prompt_len) positions of the prompts, as the stock forward computes them over the whole sequence.

    With ``mrope`` (token types and grids given) these are the family's ``get_rope_index``; otherwise the stock
    forward falls back to column indices, padding included.
    """
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
                        batch_size=None, compute_entropy=False, pixel_values=None, image_grid_thw=None,
                        num_images=None, mm_token_type_ids=None):
    """Per-token log-probs (and entropies) of the completions, as TRL's ``_get_per_token_logps_and_entropies``.

    Args:
        model: the model to call for the completions (possibly DDP/PEFT-wrapped, with TRL's fused LM head).
        backbone: its ``<Family>Model`` (see ``backbone_of``), used for the prompt pass and positions.
        input_ids, attention_mask: (batch, prompt_len + logits_to_keep), prompts left-padded.
        groups: ``find_prompt_groups`` of the batch's prompts.
        batch_size: most rows per chunk (whole groups per chunk); None: one chunk.

    Returns:
        (logps, entropies or None), each (batch, logits_to_keep), in the batch's row order.
    """
    images = {"pixel_values": pixel_values, "image_grid_thw": image_grid_thw, "num_images": num_images}
    all_rows, all_logps, all_entropies = [], [], []
    with cache_through_checkpointing(backbone):
        for chunk in chunk_groups(groups, batch_size):
            rows = groups.rows_of(chunk)
            outputs = _chunk_forward(model, backbone, input_ids, attention_mask, logits_to_keep, groups, chunk, rows,
                                     mm_token_type_ids, **images)
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
                   mm_token_type_ids, pixel_values, image_grid_thw, num_images):
    """Prompt pass for ``chunk``'s groups, then the completion pass for their ``rows``; the fused-head outputs."""
    device = input_ids.device
    prompt_len = input_ids.size(1) - logits_to_keep
    firsts = [groups.first_rows[g] for g in chunk]
    local = {g: i for i, g in enumerate(chunk)}  # each row's prompt, numbered within the chunk
    to_prompt = torch.tensor([local[g] for g in groups.row_to_group[rows].tolist()], device=device)

    prompt_ids, prompt_mask = input_ids[firsts, :prompt_len], attention_mask[firsts, :prompt_len]
    prompt_types = mm_token_type_ids[firsts, :prompt_len] if mm_token_type_ids is not None else None
    pixels, grids = select_images(pixel_values, image_grid_thw, num_images, firsts)
    mrope = mm_token_type_ids is not None and image_grid_thw is not None  # as the stock forward decides
    positions = prompt_positions(backbone, prompt_ids, prompt_mask, prompt_types, grids, mrope)
    prefix_kv = run_prefix(backbone, prompt_ids[:, :-1], prompt_mask[:, :-1], positions[..., :-1],
                           None if prompt_types is None else prompt_types[:, :-1], pixels, grids)

    # [last prompt token, completion]: the last prompt token's output scores the first completion token.
    suffix_ids = input_ids[rows, prompt_len - 1:]
    suffix_mask = attention_mask[rows, prompt_len - 1:]
    suffix_positions = positions[:, :, -1:].index_select(1, to_prompt) + torch.arange(logits_to_keep + 1,
                                                                                        device=device)
    labels = suffix_ids.masked_fill(suffix_mask == 0, -100)
    return model(input_ids=suffix_ids, attention_mask=attention_mask[rows], position_ids=suffix_positions,
                 cache=shared_prefix_cache(prefix_kv, to_prompt), labels=labels, fused_lm_head=True)


def prompt_end_reason(input_ids, attention_mask, mm_token_type_ids=None, prompt_len: int | None = None) -> str | None:
    """Why the prompts' last column cannot start the completion pass, or None (it must be a real, text token)."""
    last = (prompt_len or input_ids.size(1)) - 1
    if not bool(attention_mask[:, last].all()):
        return "the prompts are not left-padded"
    if mm_token_type_ids is not None and bool(mm_token_type_ids[:, last].any()):
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
    """Why this log-prob call cannot use the shared prefix, or None. ``other_inputs``: TRL's other vision inputs."""
    if compute_aux_loss:
        return "the MoE auxiliary loss is requested"
    others = sorted(k for k, v in other_inputs.items() if v is not None)
    if others:
        return f"inputs {others} are not supported"
    if pixel_values is not None and (image_grid_thw is None or num_images is None):
        return "images come without image_grid_thw / num_images"
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
    return prompt_end_reason(input_ids, attention_mask, mm_token_type_ids, input_ids.size(1) - logits_to_keep)
