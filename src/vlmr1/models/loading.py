"""Load a model and its processor through the model's family: one path for training, evaluation and the demo.

The processor is loaded first (no weights), so a run can build its datasets and coordinate frames, and a bad folder is
explained before minutes of weight loading.
"""

from __future__ import annotations

import logging
import os

from vlmr1.errors import UserError, bad_argument
from vlmr1.models.families import Family, get_family

logger = logging.getLogger(__name__)

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def looks_local(path: str) -> bool:
    """Whether ``path`` can only be a folder (a Hub id is ``name`` or ``org/name``)."""
    return (path.startswith(("/", "./", "../", "~")) or path.endswith("/") or path.count("/") > 1
            or os.sep != "/" and os.sep in path)


def check_model_folder(path: str) -> None:
    """Explain what a local model folder lacks (transformers' own errors name the wrong file, or the Hub)."""
    if not path:
        raise bad_argument("--model_name_or_path", "no model given", "give a model folder or a Hub id")
    if not os.path.isdir(path):
        if looks_local(path) or os.path.exists(path):
            raise UserError("no such model folder", where=path, kind="bad_model",
                            fix="give the folder of a saved model (config.json, weights, processor) or a Hub id")
        return
    if not os.path.isfile(os.path.join(path, "config.json")):
        if os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise UserError("holds a LoRA adapter, not a full model", where=path, kind="bad_model",
                            fix="merge it first (peft: PeftModel.from_pretrained(base, dir).merge_and_unload()"
                                ".save_pretrained(out), then copy the processor files into out) and use the merged "
                                "folder")
        raise UserError("has no config.json", where=path, kind="bad_model",
                        fix="give a model checkpoint folder or a Hub id")
    if not any(os.path.isfile(os.path.join(path, f)) for f in PROCESSOR_FILES):
        raise UserError(f"has no processor ({' / '.join(PROCESSOR_FILES)} missing)", where=path, kind="bad_model",
                        fix="save it next to the weights, e.g. AutoProcessor.from_pretrained(<base model>)"
                            f".save_pretrained('{path}'), with the --max_pixels the model was trained with")


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
    try:
        config = AutoConfig.from_pretrained(path, revision=revision)
    except OSError as e:  # not a folder here, and the Hub could not provide it (offline, typo, gated)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"not a model folder here, and the Hub could not provide it ({first})", where=path,
                        kind="bad_model", fix="give the folder of a saved model, or a Hub id (with network access "
                                              "or a filled Hugging Face cache)") from e
    try:
        family = get_family(config.model_type)
    except ValueError as e:
        raise UserError(str(e), where=path, kind="bad_model") from e
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
