"""Expected per-GPU memory of a GRPO run, from the model's config alone: arithmetic, no model, no torch.

The terms follow how the libraries hold things in TRL 1.16, transformers 5 and DeepSpeed 0.19:

* States, per parameter (ZeRO paper accounting): weights in the load dtype (2 bytes in bf16, 4 in fp32), gradients
  in the same dtype, AdamW's m and v in fp32 plus an fp32 master copy under DeepSpeed with bf16 (12 bytes); without
  DeepSpeed torch's AdamW keeps m and v in the parameter's dtype and there is no master copy. ZeRO-1 divides the
  optimizer states by the processes, ZeRO-2 the gradients too, ZeRO-3 the weights too; offload moves them to CPU.
* Activations: the tensors autograd saves for backward, counted per token per layer from the modules' code (an
  RMSNorm keeps its fp32 input, the normalized tensor and its output; a SwiGLU MLP four ``intermediate``-wide
  tensors; SDPA with a padding mask keeps q and k/v repeated to every head, its output and the logsumexp). With
  gradient checkpointing a layer keeps its input only, and one layer is recomputed at a time in backward.
* The shared prefix (``vlmr1.training.shared_prefix``): each distinct prompt of the micro-batch runs once (vision
  tower and prompt tokens), and each completion row attends to its prompt's keys/values gathered and repeated to
  every head. The prompt pass reaches the loss only through its keys/values, so its last layer keeps just the norm
  feeding k_proj and v_proj. Each pass embeds its tokens: its backward makes a dense (vocab x hidden) gradient, the
  second one a transient added to the first. The stock path runs prompt and vision tower once per row.
* The LM head: TRL's fused head never builds the (tokens x vocab) logits; it keeps a (4,096-token x 32,768-vocab)
  tile in the compute dtype and, in backward, fp32 accumulators for the hidden-state gradient and, when the head is
  trained, a (vocab x hidden) fp32 weight gradient. Without Triton (CPU) it scores every position, not only the
  completion's, and folds each tile with a few fp32 temporaries.

Model sizes come from :class:`vlmr1.training.model_shape.ModelShape` (Qwen families, InternVL, GLM-4.1V). Known limits:
allocator fragmentation, NCCL buffers and the CUDA context are one fixed reserve (``CUDA_RESERVE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vlmr1.training.model_shape import ModelShape

GiB = 1024**3
HEAD_TOKEN_TILE, HEAD_VOCAB_TILE = 4096, 32768  # trl.kernels.chunked_logprob's tiles
CPU_HEAD_TEMPORARIES = 6  # fp32 tiles alive at once in the torch fold of a tile (no Triton)
CUDA_RESERVE = int(1.5 * GiB)  # CUDA context, cuBLAS workspace, NCCL buffers, allocator slack
LORA_TARGETS_PER_LAYER = 7  # q, k, v, o, gate, up, down


@dataclass(frozen=True)
class RunShape:
    """The run's settings that decide memory.

    Attributes:
        num_generations: completions per prompt (G).
        batch: per-device rows per forward (``--per_device_train_batch_size``).
        prompt_text: text tokens of a prompt (chat template included, image tokens excluded).
        image_patches: vision-tower patches of a prompt's images (4 per image token for merge size 2).
        completion: completion tokens (``--max_completion_length``).
        nproc: processes (GPUs).
        zero_stage: DeepSpeed ZeRO stage, 0 for none (DDP).
        offload_optimizer, offload_params: DeepSpeed CPU offload.
        bf16: bf16 compute; weights are loaded in bf16 unless ``fp32_weights``.
        gradient_checkpointing, shared_prefix, lora_r (0: full fine-tuning), beta (> 0 keeps a reference model),
        freeze_vision, steps_per_generation, gather_for_generation (ZeRO-3 gathers the whole model to generate).
        device: ``"cuda"`` (Triton head, compact scoring) or ``"cpu"`` (the torch head scoring every position).
    """

    num_generations: int
    batch: int
    prompt_text: int
    image_patches: int
    completion: int
    nproc: int = 1
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    bf16: bool = True
    fp32_weights: bool = False
    gradient_checkpointing: bool = False
    shared_prefix: bool = True
    lora_r: int = 0
    beta: float = 0.0
    freeze_vision: bool = False
    steps_per_generation: int = 1
    gather_for_generation: bool = True
    device: str = "cuda"

    def image_tokens(self, shape: ModelShape) -> int:
        return self.image_patches // shape.merge**2

    def prompt_tokens(self, shape: ModelShape) -> int:
        return self.prompt_text + self.image_tokens(shape)

    def distinct_prompts(self) -> float:
        """Expected distinct prompts among a micro-batch's rows.

        TRL's sampler hands each process whole groups of G consecutive rows; with several steps per generation the
        generation batch is shuffled before it is split, so a micro-batch draws its rows from several groups.
        """
        rows, groups = self.batch, self.num_generations
        if self.steps_per_generation == 1:
            return max(1.0, math.ceil(rows / groups))
        total = rows * self.steps_per_generation
        prompts = max(1, total // groups)
        same = min(groups, total)
        # hypergeometric: chance that none of a prompt's rows is among the micro-batch's
        miss = math.prod((total - same - i) / (total - i) for i in range(rows)) if total - same >= rows else 0.0
        return max(1.0, prompts * (1 - miss))


@dataclass
class MemoryPlan:
    """Per-GPU bytes by term, and the peaks of training and generation.

    Attributes:
        terms: name -> bytes (see ``TERM_HELP``).
        train_peak, generation_peak, peak: bytes at the training forward+backward, at generation, their max.
    """

    terms: dict[str, float] = field(default_factory=dict)
    train_peak: float = 0.0
    generation_peak: float = 0.0

    @property
    def peak(self) -> float:
        return max(self.train_peak, self.generation_peak)


TERM_HELP = {
    "weights": "model weights held on this GPU",
    "gradients": "gradients held on this GPU",
    "optimizer": "AdamW m and v (and fp32 master weights under DeepSpeed)",
    "reference_model": "frozen copy for the KL term (beta > 0, no LoRA)",
    "zero3_gathered": "ZeRO-3 layers gathered for compute, and prefetch/reduce buckets",
    "act_vision": "vision tower activations kept for backward",
    "act_prompt": "prompt-token activations kept for backward",
    "act_completion": "completion-token activations kept for backward (with the shared prompt K/V)",
    "act_recompute": "one layer recomputed at a time under gradient checkpointing",
    "lm_head": "fused log-prob head: tiles and fp32 gradient accumulators",
    "head_gradient": "part of the gradients: the LM head's (and input embedding's), which arrives first",
    "generation_weights": "whole model gathered for generation under ZeRO-3",
    "kv_cache": "generation key/value cache of the generation batch",
}


def _norm_bytes(width: int, act: int, rms: bool) -> int:
    """Saved by one norm per token: its fp32 input, the normalized tensor and the output (``act`` bytes each);
    LayerNorm keeps its input and output only."""
    return (4 + 2 * act) * width if rms else 2 * act * width


def text_layer_bytes(shape: ModelShape, act: int, kv_tokens_per_token: float = 1.0) -> float:
    """Bytes one decoder layer saves per token: two RMSNorms (GLM-4: four), q, k and v repeated to every head (SDPA
    with a mask), the attention output and its copy for o_proj, the logsumexp, four SwiGLU tensors.
    ``kv_tokens_per_token``: keys per query token held per row (completion rows of the shared prefix also hold their
    prompt's)."""
    h, q, ff = shape.hidden, shape.q_width, shape.intermediate
    attention = act * (3 * q + 2 * q * kv_tokens_per_token) + 4 * shape.heads
    return shape.text_norms * _norm_bytes(h, act, True) + attention + 4 * act * ff


def vision_block_bytes(shape: ModelShape, act: int) -> float:
    """Bytes one vision block saves per position. Qwen: two norms, the fused qkv output (v is a view of it), q and k
    after the fp32 rotary, per-window outputs, their concatenation and the projection's input, the MLP. InternViT:
    two norms, q, k and v, the attention output and its contiguous copy, the projection's and fc2's outputs (each
    scaled by a layer scale), fc1's output and GELU's."""
    d, f = shape.vision_hidden, shape.vision_intermediate
    if shape.tile:
        return 2 * _norm_bytes(d, act, shape.vision_rms) + 7 * act * d + 2 * act * f + 4 * shape.vision_heads
    mlp = 4 * act * f if shape.vision_gated else 3 * act * f
    return 2 * _norm_bytes(d, act, shape.vision_rms) + 8 * act * d + mlp


def vision_outside_bytes(shape: ModelShape, act: int) -> float:
    """Bytes per patch the merger saves after the vision blocks: its norm over the blocks' output, then the MLP's two
    hidden tensors per image token (Qwen, GLM: as wide as the merged patches; InternVL's projector: a LayerNorm over
    the shuffled patches and two text-wide tensors). The patch embedding keeps a view of the input pixels."""
    d = shape.vision_hidden
    if shape.tile:
        return 2 * act * d + 2 * act * shape.hidden / shape.merge**2
    return _norm_bytes(d, act, shape.vision_rms) + 2 * act * d


def _states(shape: ModelShape, run: RunShape, terms: dict) -> float:
    """Weights, gradients, optimizer and reference model; returns the bytes of one copy of the weights."""
    params = shape.total_params()
    weight_bytes = 2 if run.bf16 and not run.fp32_weights else 4
    deepspeed = run.zero_stage > 0
    trainable = shape.lora_params(run.lora_r) if run.lora_r else params - (
        shape.vision_params() if run.freeze_vision else 0)
    n = run.nproc
    weights = params * weight_bytes + (shape.lora_params(run.lora_r) * 4 if run.lora_r else 0)
    lora = bool(run.lora_r)
    grad_bytes = 4 if lora else weight_bytes  # peft keeps the adapters in fp32
    if run.zero_stage >= 3:
        weights = 0 if run.offload_params else weights / n
    grads = trainable * grad_bytes / (n if run.zero_stage >= 2 else 1)
    if deepspeed:
        # fp32 master weights (when the weights are not fp32 already) + m + v, partitioned from ZeRO-1 on
        optimizer = trainable * (12 if weight_bytes == 2 else 8) / n
        optimizer = 0 if run.offload_optimizer else optimizer
    else:
        optimizer = trainable * 2 * (4 if lora else weight_bytes)
    reference = 0.0
    if run.beta > 0 and not lora:  # with LoRA the reference is the base model, adapters disabled
        reference = params * weight_bytes / (n if run.zero_stage >= 3 else 1)
    terms.update(weights=weights, gradients=grads, optimizer=optimizer, reference_model=reference)
    return params * weight_bytes


def _activations(shape: ModelShape, run: RunShape, terms: dict) -> list[tuple[float, float, float]]:
    """Activations of one training micro-batch (see the module docstring), into ``terms``.

    Returns:
        The backward sweep after the LM head, in backward order: per layer (activations it frees, gradients it
        allocates, its transient bytes), for :func:`_train_peak`.
    """
    act = 2 if run.bf16 else 4
    grad_bytes = 4 if run.lora_r or not run.bf16 or run.fp32_weights else 2
    rows, completion = run.batch, run.completion
    prompt = run.prompt_tokens(shape)
    prompt_runs = run.distinct_prompts() if run.shared_prefix else rows  # forwards of the prompt and images
    completion_kv = (prompt + completion) / completion if run.shared_prefix else 1.0  # + the prompt's K/V per row
    completion_layer = text_layer_bytes(shape, act, completion_kv) * rows * completion
    prompt_layer = text_layer_bytes(shape, act) * prompt_runs * prompt
    patches = run.image_patches * prompt_runs
    vision_layer = vision_block_bytes(shape, act) * shape.vision_tokens(patches)
    vision_trains = not run.freeze_vision and not run.lora_r
    text_grads = 0 if run.lora_r else shape.text_layer_params() * grad_bytes
    vision_grads = shape.vision_params() / max(shape.vision_layers, 1) * grad_bytes if vision_trains else 0
    ckpt = run.gradient_checkpointing
    kept_completion = act * shape.hidden * rows * completion if ckpt else completion_layer
    kept_prompt = act * shape.hidden * prompt_runs * prompt if ckpt else prompt_layer
    kept_vision = (act * shape.vision_hidden * shape.vision_tokens(patches) if ckpt else vision_layer
                   ) if vision_trains else 0.0
    # backward of a layer: its recomputed activations (checkpointing) and the gradients of its widest tensors
    tokens_c, tokens_p = rows * completion, prompt_runs * prompt
    mlp_grad = 2 * act * shape.intermediate
    transient_c = (completion_layer if ckpt else 0) + mlp_grad * tokens_c
    transient_p = (prompt_layer if ckpt else 0) + mlp_grad * tokens_p
    transient_v = (vision_layer if ckpt else 0) + 2 * act * shape.vision_intermediate * patches
    # the shared prefix's prompt pass is used only through each layer's keys/values: its last layer keeps no more
    # than the input norm that feeds k_proj and v_proj (the rest of that layer is computed and dropped)
    last_prompt = (kept_prompt if ckpt else _norm_bytes(shape.hidden, act, True) * tokens_p) if run.shared_prefix \
        else kept_prompt
    terms["act_prompt"] = (shape.layers - 1) * kept_prompt + last_prompt
    terms["act_completion"] = shape.layers * kept_completion
    terms["act_vision"] = shape.vision_layers * kept_vision
    # the merger (projector) when the tower trains, and the input embeddings with the image features
    merger = vision_outside_bytes(shape, act) * patches if vision_trains else 0.0
    terms["act_vision"] += merger + act * 2 * shape.hidden * tokens_p
    # the final norm's fp32 input and normalized tensor over the positions reaching the head (its output is the
    # head's input, counted with the head); freed as the backward enters the last layer
    final_norm = (4 + act) * shape.hidden * (tokens_c if run.shared_prefix else tokens_c + rows * prompt)
    terms["act_completion"] += final_norm
    terms["act_recompute"] = max(completion_layer, prompt_layer, vision_layer if vision_trains else 0) if ckpt else 0
    # each pass's input-embedding backward makes a dense (vocab x hidden) gradient: the first is kept (untied) or
    # added to the tied head's (a transient), a later one is added (a transient)
    embedding = 0.0 if run.lora_r else shape.vocab * shape.hidden * grad_bytes
    first_embedding = (0.0, 0.0, embedding) if shape.tied else (0.0, embedding, 0.0)
    vision = [(kept_vision, vision_grads, transient_v if vision_trains else 0.0)] * shape.vision_layers
    vision = [(merger, 0.0, 0.0)] + vision
    if run.shared_prefix:  # the completion pass's backward and embedding, then the prompt pass's
        return ([(final_norm, 0.0, 0.0)] + [(kept_completion, text_grads, transient_c)] * shape.layers
                + [first_embedding] + [(last_prompt, 0.0, transient_p)]
                + [(kept_prompt, 0.0, transient_p)] * (shape.layers - 1) + vision + [(0.0, 0.0, embedding)])
    return ([(final_norm, 0.0, 0.0)] + [(kept_completion + kept_prompt, text_grads, transient_c + transient_p)]
            * shape.layers + vision + [first_embedding])


def _train_peak(terms: dict, sweep: list[tuple[float, float, float]], head_grads: float) -> float:
    """The highest point of a forward+backward above the states held before it: every activation and the LM head's
    transient at the start of backward, then layer by layer activations freed while gradients arrive."""
    live = sum(terms[k] for k in ("act_vision", "act_prompt", "act_completion"))
    peak = live + terms["lm_head"]
    grads = head_grads
    for freed, new_grads, transient in sweep:
        peak = max(peak, live + grads + new_grads + transient)
        live -= freed
        grads += new_grads
    return max(peak, live + grads)


def _lm_head(shape: ModelShape, run: RunShape, terms: dict) -> None:
    act = 2 if run.bf16 else 4
    if run.device == "cuda":
        scored = run.batch * run.completion  # only labelled positions
    elif run.shared_prefix:
        scored = run.batch * run.completion  # the completion pass: [last prompt token, completion] per row
    else:
        scored = run.batch * (run.prompt_tokens(shape) + run.completion - 1)
    tile = min(scored, HEAD_TOKEN_TILE) * min(HEAD_VOCAB_TILE, shape.vocab)
    head = tile * act + scored * shape.hidden * (4 + act)  # the tile; fp32 hidden gradient and the saved input
    if run.device == "cpu":
        head += CPU_HEAD_TEMPORARIES * tile * 4
    weight_bytes = 2 if run.bf16 and not run.fp32_weights else 4
    head_trains = not run.lora_r
    if head_trains:  # the fp32 accumulator of the head's weight gradient, alive with the tiles (in fp32 it becomes
        head += shape.vocab * shape.hidden * 4  # the gradient; in bf16 it is cast to it)
    terms["lm_head"] = head
    # the head's gradient (the tied embedding's too) stays from the head's backward on; untied, the input
    # embedding's arrives last (see _activations)
    terms["head_gradient"] = shape.vocab * shape.hidden * weight_bytes if head_trains else 0.0


def _zero3_buffers(shape: ModelShape, run: RunShape, terms: dict) -> None:
    if run.zero_stage < 3:
        # ZeRO-2 reduces gradients through buckets of reduce_bucket_size ("auto": hidden^2) elements
        terms["zero3_gathered"] = 2 * shape.hidden**2 * 2 if run.zero_stage == 2 else 0.0
        return
    weight_bytes = 2 if run.bf16 and not run.fp32_weights else 4
    widest = max(shape.text_layer_params(), shape.embedding_params() // (1 if shape.tied else 2))
    # the module in use and the prefetched one, plus the reduce bucket ("auto": hidden^2 elements)
    terms["zero3_gathered"] = 2 * widest * weight_bytes + shape.hidden**2 * weight_bytes


def plan_memory(shape: ModelShape, run: RunShape) -> MemoryPlan:
    """Expected per-GPU memory of ``run`` on the model of ``shape``.

    Returns:
        A :class:`MemoryPlan`; ``train_peak`` is the states plus one training micro-batch's forward+backward,
        ``generation_peak`` the states plus the gathered weights and KV cache of generation.
    """
    terms: dict[str, float] = {}
    full_weights = _states(shape, run, terms)
    _zero3_buffers(shape, run, terms)
    sweep = _activations(shape, run, terms)
    _lm_head(shape, run, terms)
    act = 2 if run.bf16 else 4
    gen_rows = run.batch * run.steps_per_generation
    cache_rows = (run.distinct_prompts() * run.steps_per_generation if run.shared_prefix else gen_rows)
    kv_per_token = shape.layers * 2 * shape.kv_width * act
    terms["kv_cache"] = kv_per_token * (cache_rows * run.prompt_tokens(shape) + gen_rows * run.completion)
    if run.shared_prefix:  # the prefilled cache is copied to the G rows before sampling
        terms["kv_cache"] += kv_per_token * gen_rows * run.prompt_tokens(shape)
    gathered = run.zero_stage >= 3 and run.gather_for_generation
    terms["generation_weights"] = full_weights - terms["weights"] if gathered else 0.0
    # gradients are allocated during backward (the trainer sets them to None after each step): the sweep places
    # them; what ZeRO-2/3 keeps of them is a partition (the sweep's full gradients are scaled to it)
    states = terms["weights"] + terms["optimizer"] + terms["reference_model"]
    full_grads = sum(g for _, g, _ in sweep) + terms["head_gradient"]
    scale = terms["gradients"] / full_grads if full_grads else 0.0
    if not full_grads:  # LoRA: the adapters' small gradients, held throughout
        states += terms["gradients"]
    sweep = [(freed, g * scale, transient) for freed, g, transient in sweep]
    plan = MemoryPlan(terms=terms)
    plan.train_peak = (states + terms["zero3_gathered"]
                       + _train_peak(terms, sweep, terms["head_gradient"] * scale))
    plan.generation_peak = (states + terms["kv_cache"] + terms["generation_weights"]
                            + gen_rows * shape.vocab * 4)  # fp32 next-token logits of the rows
    return plan
