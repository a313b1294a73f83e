"""Load a model and its processor through the model's family: one path for training, evaluation and the demo.

The processor is loaded first (no weights), so a run can build its datasets and coordinate frames, and a bad folder is
explained before minutes of weight loading.
"""

from __future__ import annotations

import logging
import os

from vlmr1.models.families import Family, get_family

logger = logging.getLogger(__name__)

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def check_model_folder(path: str) -> None:
    """Explain what a local model folder lacks (transformers' own errors name the wrong file)."""
    if not os.path.isdir(path):
        return
    if not os.path.isfile(os.path.join(path, "config.json")):
        if os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise ValueError(f"{path} holds a LoRA adapter, not a full model: merge it first (peft: "
                             "PeftModel.from_pretrained(base, dir).merge_and_unload().save_pretrained(out), "
                             "then copy the processor files into out) and use the merged folder")
        raise ValueError(f"{path} has no config.json: give a model checkpoint folder or a Hub id")
    if not any(os.path.isfile(os.path.join(path, f)) for f in PROCESSOR_FILES):
        raise ValueError(f"{path} has no processor ({' / '.join(PROCESSOR_FILES)} missing): save it next to the "
                         "weights, e.g. AutoProcessor.from_pretrained(<base model>).save_pretrained("
                         f"'{path}'), with the --max_pixels the model was trained with")


def load_processor(path: str, revision: str | None = None, min_pixels: int | None = None,
                   max_pixels: int | None = None, max_tiles: int | None = None):
    """The family and processor of a checkpoint (folder or Hub id), with the run's image limits; no weights.

    Args:
        min_pixels, max_pixels: bounds on the image area (``--min_pixels``/``--max_pixels``); None keeps the
            processor's.
        max_tiles: the most tiles per image for tiling families (InternVL; VLM-R1's ``--max_anyres_num``); None
            keeps the processor's.
    """
    from transformers import AutoConfig, AutoProcessor

    check_model_folder(path)
    family = get_family(AutoConfig.from_pretrained(path, revision=revision).model_type)
    processor = AutoProcessor.from_pretrained(path, revision=revision)
    if not hasattr(processor, "image_processor"):
        raise ValueError(f"{path} has a tokenizer but no image processor: save the processor next to the checkpoint "
                         "(processor.save_pretrained(dir)) or copy it from the base model")
    family.set_image_limits(processor, min_pixels, max_pixels, max_tiles)
    return family, processor


def load_model(family: Family, path: str, dtype: str | None = "auto", attn_implementation: str | None = None,
               revision: str | None = None, freeze_vision: bool = False):
    """The weights, through the family; with ``freeze_vision`` the vision tower (patch merger included) is frozen."""
    model = family.load(path, dtype=dtype or "auto", attn_implementation=attn_implementation, revision=revision)
    if freeze_vision:
        logger.info("froze %d vision parameters", family.freeze_vision(model))
    return model
