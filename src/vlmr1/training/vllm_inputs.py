"""Prompt ids for vLLM rollouts of a VLM, guarding TRL issue #6294.

TRL 1.16 hands vLLM (colocate mode) the prompt ids the *processor* produced, where every image is already expanded
into its run of ``<|image_pad|>`` tokens, together with the images themselves. vLLM expands image placeholders
again from the images, so the prompt it samples from is corrupted. vLLM expects what a tokenizer alone produces:
one placeholder token per image. Server mode is different: TRL computes image features itself and places them on
the expanded runs, so expanded ids are right there.
"""

from __future__ import annotations

from collections.abc import Sequence


def collapse_image_runs(prompt_ids: Sequence[int], placeholder_ids: set[int]) -> list[int]:
    """Replace each run of one repeated placeholder token by a single token.

    Args:
        prompt_ids: one prompt's token ids, images expanded (``[..., pad, pad, pad, ...]``).
        placeholder_ids: the image/video placeholder token ids (e.g. ``<|image_pad|>``).

    Returns:
        The ids with one placeholder per image.
    """
    out: list[int] = []
    for token in prompt_ids:
        if token in placeholder_ids and out and out[-1] == token:
            continue
        out.append(token)
    return out


def vllm_prompt_ids(prompt_ids: Sequence[Sequence[int]], images: Sequence[Sequence | None] | None, mode: str,
                    placeholder_ids: set[int]) -> list[list[int]]:
    """The prompt ids to send to vLLM: collapsed in colocate mode when there are images, unchanged otherwise.

    Args:
        prompt_ids: per prompt, the processor-expanded ids TRL built.
        images: per prompt, its images (None or empty for text-only prompts), or None for a text-only batch.
        mode: ``"colocate"`` or ``"server"`` (``--vllm_mode``).
        placeholder_ids: image placeholder token ids of the model.

    Returns:
        Per prompt, the ids vLLM should see.

    Raises:
        ValueError: when a prompt's placeholder count after collapsing differs from its image count, which would
            make vLLM attach images to the wrong places (e.g. two images written back to back with no text between
            them collapse into one run): the message says how to write such prompts.
    """
    if mode != "colocate" or images is None:
        return [list(ids) for ids in prompt_ids]
    out = []
    for ids, image_list in zip(prompt_ids, images, strict=True):
        collapsed = collapse_image_runs(ids, placeholder_ids)
        found, expected = sum(t in placeholder_ids for t in collapsed), len(image_list or [])
        if found != expected:
            raise ValueError(
                f"vLLM rollout: a prompt has {expected} image(s) but {found} image placeholder run(s) after "
                "undoing the processor's expansion (TRL issue #6294 guard). Use a chat template that wraps each "
                "image in <|vision_start|>...<|vision_end|>, or train with --use_vllm false.")
        out.append(collapsed)
    return out
