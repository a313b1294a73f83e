"""Greedy generation for evaluation: batched transformers ``generate`` (left-padded), or vLLM.

Prompts are built the way GRPO training builds them: TRL's ``prepare_multimodal_messages`` puts the row's images
into its image blocks, then one processor ``apply_chat_template(..., add_generation_prompt=True)`` call renders the
chat template and runs the image processor. The model is evaluated on the tokens it was trained on.

A generator is any callable ``rows -> completion texts``; :func:`vlmr1.evaluation.evaluate` takes either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl.data_utils import prepare_multimodal_messages

logger = logging.getLogger(__name__)

# Qwen chat templates end the assistant turn with this token; checkpoints do not always list it as eos.
END_OF_TURN = "<|im_end|>"


def row_conversation(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The row's chat messages with its PIL images placed in the image blocks (as TRL does before generation).

    Args:
        row: a dataset row from :func:`vlmr1.data.loading.build_dataset` (``prompt``, ``images``).
    """
    return prepare_multimodal_messages(row["prompt"], images=list(row.get("images") or []))


def stop_token_ids(processor: Any, generation_config: Any = None) -> list[int]:
    """Token ids that end a completion: the checkpoint's eos id(s), the tokenizer's eos and ``<|im_end|>``.

    Args:
        processor: the model's processor (its ``tokenizer`` is used).
        generation_config: the model's ``generation_config``, or None.

    Returns:
        Distinct ids, checkpoint ones first.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    ids: list[int] = []
    configured = getattr(generation_config, "eos_token_id", None)
    for value in ([configured] if isinstance(configured, int) else list(configured or [])):
        ids.append(int(value))
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.append(end_of_turn)
    return list(dict.fromkeys(ids))


def completion_text(tokenizer: Any, ids: Sequence[int], stops: Sequence[int]) -> str:
    """Decode a completion up to (not including) its first stop token; special tokens are dropped."""
    ids = list(ids)
    end = next((k for k, t in enumerate(ids) if t in stops), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True)


class TransformersGenerator:
    """Batched greedy decoding with ``model.generate``.

    Args:
        model: a ``...ForConditionalGeneration`` model (peft-wrapped is fine), on its device.
        processor: its processor (pixel limits already applied).
        max_new_tokens: longest completion.
    """

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 256):
        self.model, self.processor, self.max_new_tokens = model, processor, max_new_tokens
        self.tokenizer = processor.tokenizer
        self.stops = stop_token_ids(processor, getattr(model, "generation_config", None))
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else self.stops[0]

    def inputs(self, rows: Sequence[Mapping[str, Any]]):
        """Tokenise a batch: left padding, so every prompt ends where generation starts.

        Returns:
            The processor's ``BatchFeature`` (``input_ids``, ``attention_mask``, ``mm_token_type_ids``, and
            ``pixel_values``/``image_grid_thw`` when any row has images), on CPU.
        """
        return self.processor.apply_chat_template(
            [row_conversation(row) for row in rows], add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt", processor_kwargs={"padding": True, "padding_side": "left"})

    def generate_kwargs(self) -> dict[str, Any]:
        """Pure greedy decoding. Explicit values win over a checkpoint's sampling defaults (Qwen ships
        ``do_sample=True`` and ``repetition_penalty=1.05``)."""
        return {"max_new_tokens": self.max_new_tokens, "do_sample": False, "num_beams": 1, "repetition_penalty": 1.0,
                "eos_token_id": self.stops, "pad_token_id": self.pad_token_id, "use_cache": True}

    @torch.inference_mode()
    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Generate one completion per row.

        Returns:
            The completion texts, in row order.
        """
        device = next(self.model.parameters()).device
        # mm_token_type_ids travels with the batch: Qwen's M-RoPE positions are computed from it.
        inputs = self.inputs(rows).to(device)
        output = self.model.generate(**inputs, **self.generate_kwargs())
        completions = output[:, inputs["input_ids"].shape[1]:].tolist()
        return [completion_text(self.tokenizer, ids, self.stops) for ids in completions]


def import_vllm():
    """Import vLLM, or say how to install it."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError("--use_vllm needs vLLM, which is not installed: pip install 'vlmr1[vllm]' "
                          "(or leave out --use_vllm to generate with transformers)") from e
    return vllm


class VLLMGenerator:
    """Greedy decoding with a vLLM engine on this process's GPU.

    Under ``torchrun`` each process runs its own engine on its own shard (``external_launcher``, tensor parallel 1),
    the way TRL's colocated vLLM mode does.

    Args:
        model_path: the checkpoint (vLLM loads it itself).
        processor: the checkpoint's processor, used for the chat template and stop tokens.
        max_new_tokens: longest completion.
        dtype: weights dtype name ("auto" keeps the checkpoint's).
        max_images_per_prompt: the most images any row has (vLLM reserves memory per image).
        min_pixels, max_pixels: image area limits handed to the image processor; None keeps the checkpoint's.
        data_parallel: True when running under torchrun with several processes.
        gpu_memory_utilization, max_model_len, revision, seed: passed to ``vllm.LLM``.
    """

    def __init__(self, model_path: str, processor: Any, max_new_tokens: int = 256, *, dtype: str = "auto",
                 max_images_per_prompt: int = 1, min_pixels: int | None = None, max_pixels: int | None = None,
                 data_parallel: bool = False, gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 revision: str | None = None, seed: int = 0):
        vllm = import_vllm()
        self.processor = processor
        pixel_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
        engine_kwargs: dict[str, Any] = {
            "model": model_path, "revision": revision, "dtype": dtype, "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization,
            "limit_mm_per_prompt": {"image": max(1, max_images_per_prompt)},
        }
        if pixel_kwargs:
            engine_kwargs["mm_processor_kwargs"] = pixel_kwargs
        if max_model_len:
            engine_kwargs["max_model_len"] = max_model_len
        if data_parallel:
            engine_kwargs.update(distributed_executor_backend="external_launcher", tensor_parallel_size=1)
        self.llm = vllm.LLM(**engine_kwargs)
        self.sampling = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens,
                                            stop_token_ids=stop_token_ids(processor), skip_special_tokens=True)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Generate one completion per row; returns the texts in row order."""
        prompts = []
        for row in rows:
            text = self.processor.apply_chat_template(row_conversation(row), add_generation_prompt=True,
                                                      tokenize=False)
            prompt: dict[str, Any] = {"prompt": text}
            if row.get("images"):
                prompt["multi_modal_data"] = {"image": list(row["images"])}
            prompts.append(prompt)
        outputs = self.llm.generate(prompts, self.sampling, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]
