"""vlmr1's GRPO trainer: ``trl.GRPOTrainer`` with named, narrow extensions (TRL is pinned to 1.16 for them)."""

from __future__ import annotations

from trl import GRPOTrainer


class VLMGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` for vision-language GRPO; the loop, sampling and loss are TRL's own.

    Extensions, each one overridden method:

    - ``_generate``: text-only rows mixed with image rows. TRL 1.16 marks a prompt without images as ``None`` in the
      image list it hands back, and the processor then rejects the batch; an empty list is what it accepts.
    """

    def _generate(self, prompts: list):
        *head, images, tool_images = super()._generate(prompts)
        if images is not None:
            images = [image_list or [] for image_list in images]
        return (*head, images, tool_images)
