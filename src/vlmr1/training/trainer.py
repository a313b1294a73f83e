"""vlmr1's GRPO trainer: ``trl.GRPOTrainer`` with named, narrow extensions (TRL is pinned to 1.16 for them)."""

from __future__ import annotations

import logging
from contextlib import nullcontext

from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context

from vlmr1.training import shared_prefix as sp
from vlmr1.training.deepspeed_ranks import (
    deepspeed_ranks_stage,
    encode_blank_image,
    register_external_parameters,
    vision_in_every_forward,
)
from vlmr1.training.shared_prefix_generate import prefill_once_generate
from vlmr1.training.vllm_inputs import vllm_prompt_ids

logger = logging.getLogger(__name__)


class VLMGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` for vision-language GRPO; the loop, sampling and loss are TRL's own.

    Extensions, each one overridden method:

    - ``_generate``: text-only rows mixed with image rows. TRL 1.16 marks a prompt without images as ``None`` in the
      image list it hands back, and the processor then rejects the batch; an empty list is what it accepts. And
      under data parallelism TRL gathers the batch's images for its completion logs only on ranks whose batch has
      images, so a rank with a text-only batch leaves the others waiting forever: images are logged only for
      steps where every rank has some.
    - ``_get_per_token_logps_and_entropies``: ``--shared_prefix`` (see ``vlmr1.training.shared_prefix``): each
      group's images and prompt run once, its G completions against them, for the old/ref log-probs and the
      training forward+backward alike.
    - ``_generate_single_turn``: ``--shared_prefix`` for transformers generation: each distinct prompt is prefilled
      once and its cache copied to the G rows, then TRL's own generate call samples as before. With vLLM in
      colocate mode, the prompts go to vLLM with one placeholder per image (``vlmr1.training.vllm_inputs``).

    - ``_calculate_rewards``: TRL's rewards, and this process's rows, completions and rewards handed to the rollout
      pictures (``vlmr1.training.rollouts``) when they are on.

    Under DeepSpeed on several processes, every forward runs the vision tower (``vlmr1.training.deepspeed_ranks``)
    and, under ZeRO-3, all ranks take the same log-prob path, so ranks with text-only batches issue the same
    collectives as the others. ``__init__`` registers the weights a family's modules read outside their owner's
    forward with ZeRO-3.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        register_external_parameters(self.model, self.ref_model)

    rollout_pictures = None  # a vlmr1.training.rollouts.RolloutPictures, set by vlmr1.training.setup

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's rewards (gathered over processes); the main process also keeps its own share for the pictures.

        Overridden because this is the one place that has the rows (with their truth fields and images), the
        completions and every function's reward together; nothing is gathered or copied for it.
        """
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        pictures = self.rollout_pictures
        if pictures is not None and pictures.enabled and self.accelerator.is_main_process and self.model.training:
            mine = rewards_per_func[: len(prompts)]  # the main process's rows come first in the gathered tensor
            pictures.capture(inputs, completions, mine.tolist(), self.reward_func_names,
                             self.reward_weights.tolist(), [len(ids) for ids in completion_ids_list])
        return rewards_per_func

    def _generate(self, prompts: list):
        *head, images, tool_images = super()._generate(prompts)
        if images is not None:
            images = [image_list or [] for image_list in images]
        if self.accelerator.num_processes > 1:
            every_rank_has_images = all(gather_object([images is not None]))
            self.log_multimodal = self.args.log_multimodal and every_rank_has_images
        return (*head, images, tool_images)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, pixel_values=None,
                                           image_grid_thw=None, num_images=None, mm_token_type_ids=None, **others):
        """TRL's log-probs/entropies, computed with the prompts shared by their group where possible.

        Overridden because this is the one place every policy/reference forward goes through (old and ref log-probs
        under no_grad, the training forward with gradients); the result has TRL's shapes and meaning (temperature,
        fp32 head and entropy come from TRL's own fused head). Anything the shared path does not cover goes to
        ``super()`` unchanged, with one log line per reason.
        """
        images = {"pixel_values": pixel_values, "image_grid_thw": image_grid_thw, "num_images": num_images,
                  "mm_token_type_ids": mm_token_type_ids}
        unwrapped = self.accelerator.unwrap_model(model)
        reason = self._shared_prefix_reason(unwrapped) or sp.forward_reason(
            unwrapped, input_ids, attention_mask, logits_to_keep, compute_aux_loss=compute_aux_loss,
            reentrant_checkpointing=self._reentrant_checkpointing(unwrapped), **images, **others)
        groups = batch_images = None
        if reason is None:
            prompt_len = input_ids.size(1) - logits_to_keep
            batch_images = sp.BatchImages.of(unwrapped.config, input_ids[:, :prompt_len], pixel_values,
                                             image_grid_thw, num_images)
            groups = sp.find_prompt_groups(input_ids[:, :prompt_len], attention_mask[:, :prompt_len],
                                           mm_token_type_ids, batch_images)
            if groups.num_groups == input_ids.size(0):
                reason = "every prompt of the batch is distinct"
        stage = deepspeed_ranks_stage(self.accelerator)
        if stage == 3:
            plan = None if reason is not None else len(sp.chunk_groups(groups, batch_size))
            if len(set(gather_object([plan]))) > 1:  # ZeRO-3 needs every rank to run the same forwards
                reason = reason or "under ZeRO-3 all ranks must run the same forwards, and another rank cannot share"
        with vision_in_every_forward(sp.backbone_of(unwrapped)) if stage is not None else nullcontext():
            return self._logps_by_path(model, unwrapped, input_ids, attention_mask, logits_to_keep, groups, reason,
                                       batch_size, compute_entropy, compute_aux_loss, images, others, batch_images)

    def _logps_by_path(self, model, unwrapped, input_ids, attention_mask, logits_to_keep, groups, reason, batch_size,
                       compute_entropy, compute_aux_loss, images, others, batch_images):
        """TRL's stock log-probs when there is a ``reason`` not to share, else the shared-prefix ones."""
        if reason is not None:
            self._note_stock_path("log-probs", reason)
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **images, **others)
        with profiling_context(self, "shared_prefix_logps"), self.accelerator.autocast():
            logps, entropies = sp.shared_prefix_logps(
                model, sp.backbone_of(unwrapped), input_ids, attention_mask, logits_to_keep, groups,
                batch_size=batch_size, compute_entropy=compute_entropy, images=batch_images,
                mm_token_type_ids=images["mm_token_type_ids"])
        return logps, entropies, None

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        """TRL's generation; on the regular transformers branch, each distinct prompt is prefilled once.

        Overridden to wrap only the ``generate`` call that TRL's regular branch makes (TRL still pads, unwraps the
        model and cuts completions at EOS). vLLM, continuous batching and tool images go to ``super()`` as is.
        """
        unwrapped = self.accelerator.unwrap_model(self.model_wrapped)
        if self.use_vllm and images is not None:  # TRL issue #6294: vLLM would expand the images a second time
            placeholders = {getattr(unwrapped.config, k, None) for k in ("image_token_id", "video_token_id")} - {None}
            prompt_ids = vllm_prompt_ids(prompt_ids, images, self.args.vllm_mode, placeholders)
        reason = self._shared_prefix_reason(unwrapped)
        if self.use_vllm:
            reason = reason or "vLLM generates the completions"
        elif self.use_transformers_continuous_batching:
            reason = reason or "continuous batching generates the completions"
        if has_tool_images:
            reason = reason or "tool images are part of the prompts"
        per_module_gathers = deepspeed_ranks_stage(self.accelerator) == 3 and not self.args.ds3_gather_for_generation
        if per_module_gathers:
            reason = reason or "ZeRO-3 without --ds3_gather_for_generation"
        if reason is not None or not images:
            if reason is not None:
                self._note_stock_path("generation", reason)
            if per_module_gathers and not any(images or []):
                encode_blank_image(sp.backbone_of(unwrapped))  # the ranks with images encode theirs now, too
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        num_images = [len(image_list) if image_list else 0 for image_list in images]
        with prefill_once_generate(unwrapped, num_images, note=lambda why: self._note_stock_path("generation", why)):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)

    def _shared_prefix_reason(self, unwrapped_model) -> str | None:
        """Why this run cannot share prompts at all (flag off, model family, attention), or None."""
        if not getattr(self.args, "shared_prefix", False):
            return "--shared_prefix is off"
        return sp.model_reason(unwrapped_model)

    def _reentrant_checkpointing(self, unwrapped_model) -> bool:
        """Whether the text layers are checkpointed reentrantly (which would cut the prompt out of the graph)."""
        layers = sp.decoder_layers(sp.backbone_of(unwrapped_model))
        return bool((self.args.gradient_checkpointing_kwargs or {}).get("use_reentrant")) and any(
            getattr(layer, "gradient_checkpointing", False) for layer in layers)

    def _note_stock_path(self, what: str, reason: str) -> None:
        """Log, once per reason, that ``what`` takes TRL's stock path."""
        noted = self.__dict__.setdefault("_shared_prefix_noted", set())
        if (what, reason) not in noted:
            noted.add((what, reason))
            logger.info("shared prefix off for %s: %s; using TRL's stock path", what, reason)
