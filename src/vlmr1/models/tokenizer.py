"""Tiny offline tokenizers and the Qwen chat template, trained locally in well under a second.

The tokenizer is a byte-level BPE trained with the `tokenizers` library on a corpus generated in code
(referring phrases, questions, JSON with numbers, `<think>`/`<answer>` tags). It carries a family's special
tokens (:class:`ChatTokens`; the Qwen ones by default, in Qwen's ordering), splits digits one per token, and
round-trips arbitrary text byte-exactly (no normalizer). It is wrapped in transformers' `TokenizersBackend` (alias
`PreTrainedTokenizerFast`), which reloads `tokenizer.json` verbatim; `Qwen2Tokenizer` would rebuild its own pipeline
on load. Each family adapter (``vlmr1.models.families``) names its tokens and chat template.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN_PRETOKENIZE_REGEX

# Qwen's vision/chat special tokens, in the order the real Qwen2/2.5/3-VL vocabularies use.
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)



@dataclass(frozen=True)
class ChatTokens:
    """The special tokens of a family's tokenizer.

    Attributes:
        special: every special token, in the order the real vocabulary numbers them.
        eos, pad: the end-of-sequence and padding tokens (both among ``special``).
        named: extra named tokens the family's processor reads as tokenizer attributes (InternVL's
            ``context_image_token`` ...), saved as ``extra_special_tokens``.
    """

    special: tuple[str, ...]
    eos: str
    pad: str
    named: Mapping[str, str] = field(default_factory=dict)


QWEN_CHAT_TOKENS = ChatTokens(QWEN_SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")

# `_SPLIT_PATTERN` is Qwen's own pre-tokenisation split (letters, single digits, punctuation runs, whitespace),
# taken from transformers; Digits below makes one-digit-per-token explicit and independent of the regex.
_SPLIT_PATTERN = QWEN_PRETOKENIZE_REGEX

_COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "gray", "pink", "brown", "cyan"]
_SHAPES = ["star", "ellipse", "circle", "square", "triangle", "rectangle", "hexagon", "polygon", "diamond", "cross"]
_SIZES = ["small", "large", "big", "tiny", "medium"]
_WHERE = ["left", "right", "top", "bottom", "upper left", "lower right", "middle", "center", "corner", "edge"]
_RELATIONS = ["above", "below", "next to", "left of", "right of", "near", "behind", "inside"]
_WORDS = (
    "a an the this that these those is are was were be been has have had do does did can could will would should "
    "what which where when who why how many much more most less least some any all each every both either neither "
    "image picture photo region object objects shape shapes color colour size position location area mask segment "
    "box boxes bounding coordinate coordinates point points polygon outline contour pixel pixels width height "
    "answer question reason reasoning think thinking step steps first second third then next finally therefore "
    "because since so thus count number numbers total sum difference product equal equals greater smaller than "
    "yes no true false correct wrong none one two three four five six seven eight nine ten hundred thousand "
    "user assistant system you are helpful please provide output format json list label labels describe describes "
    "sentence phrase refer refers referring expression detect detection ground grounding find locate show give "
    "in on at of to from with without by for into over under between around across along inside outside near "
    "far close visible hidden there here it its they them their we our i my me he she his her and or not but if "
    "large small big tiny long short wide narrow bright dark light heavy round flat sharp smooth person people "
    "car dog cat tree house table chair cup book bottle phone window door road sky water grass chart graph text"
).split()
_QUESTIONS = [
    "Please provide the bounding box coordinates of the region this sentence describes: {ref}.",
    "Output the bounding box of {ref} in JSON format.",
    "Where is {ref}? Answer with a point.",
    "How many {color} {shape}s are there in the image?",
    "What color is the {shape} on the {where}?",
    "Segment {ref} and output its polygon.",
    "Is the {color} {shape} {rel} the {color2} {shape2}? Answer yes or no.",
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags.",
    "First think about the reasoning process, then give the answer.",
    "What is {a} + {b}? What is {a} * {b}? The result is a number.",
]


def _referring_phrase(rng: random.Random) -> str:
    """Return a random referring expression such as 'the small red star on the left'."""
    parts = ["the"]
    if rng.random() < 0.5:
        parts.append(rng.choice(_SIZES))
    parts += [rng.choice(_COLORS), rng.choice(_SHAPES)]
    if rng.random() < 0.5:
        parts += ["on the", rng.choice(_WHERE)]
    else:
        parts += [rng.choice(_RELATIONS), "the", rng.choice(_COLORS), rng.choice(_SHAPES)]
    return " ".join(parts)


def generate_corpus(num_samples: int = 800, seed: int = 0) -> list[str]:
    """Generate the in-code training corpus for the tiny tokenizer.

    Args:
        num_samples: number of synthetic documents to produce.
        seed: RNG seed, so the corpus (and hence the vocabulary) is deterministic.

    Returns:
        A list of strings mixing questions, referring phrases, JSON answers and reasoning tags.
    """
    rng = random.Random(seed)
    corpus = []
    for _ in range(num_samples):
        ref = _referring_phrase(rng)
        question = rng.choice(_QUESTIONS).format(
            ref=ref,
            color=rng.choice(_COLORS),
            color2=rng.choice(_COLORS),
            shape=rng.choice(_SHAPES),
            shape2=rng.choice(_SHAPES),
            where=rng.choice(_WHERE),
            rel=rng.choice(_RELATIONS),
            a=rng.randint(0, 999),
            b=rng.randint(0, 999),
        )
        box = sorted(rng.sample(range(0, 1000), 2)) + sorted(rng.sample(range(0, 1000), 2))
        box = [box[0], box[2], box[1], box[3]]
        answer = json.dumps([{"bbox_2d": box, "label": ref.removeprefix("the ")}])
        point = json.dumps({"point_2d": [rng.randint(0, 999), rng.randint(0, 999)], "label": rng.choice(_SHAPES)})
        polygon = json.dumps({"polygon": [[rng.randint(0, 640), rng.randint(0, 480)] for _ in range(4)]})
        think = f"<think>I see {ref}. It is on the {rng.choice(_WHERE)} of the image, so the box is {box}.</think>"
        prose = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 20)))
        corpus.append(prose.capitalize() + rng.choice([".", "?", "!", ",", ";", ":"]))
        corpus += [question, f"{think}\n<answer>{answer}</answer>", f"<answer>{point}</answer>", polygon]
    return corpus


def build_qwen_chat_template(default_system_prompt: str | None = None,
                             image_placeholder: str = "<|vision_start|><|image_pad|><|vision_end|>",
                             video_placeholder: str = "<|vision_start|><|video_pad|><|vision_end|>") -> str:
    """Build a Qwen-style (ChatML) Jinja chat template.

    Turns render as `<|im_start|>role\\n...<|im_end|>\\n`; an image part renders as `image_placeholder` (Qwen:
    `<|vision_start|><|image_pad|><|vision_end|>`, InternVL: `<IMG_CONTEXT>\\n`) at its position in the content list,
    a video part as `video_placeholder`.

    Args:
        default_system_prompt: if given, a system turn with this text is prepended when the conversation
            does not start with one (as the real Qwen2/2.5-VL templates do with "You are a helpful assistant.").
        image_placeholder, video_placeholder: what an image / video part renders as.

    Returns:
        The Jinja template string.
    """
    head = ""
    if default_system_prompt is not None:
        head = (
            "{%- if messages and messages[0]['role'] != 'system' -%}"
            "{{- '<|im_start|>system\\n' + " + json.dumps(default_system_prompt) + " + '<|im_end|>\\n' -}}"
            "{%- endif -%}"
        )
    return head + (
        "{%- for message in messages -%}"
        "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
        "{%- if message['content'] is string -%}"
        "{{- message['content'] -}}"
        "{%- elif message['content'] is not none -%}"
        "{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
        "{{- " + json.dumps(image_placeholder) + " -}}"
        "{%- elif part['type'] == 'video' or 'video' in part -%}"
        "{{- " + json.dumps(video_placeholder) + " -}}"
        "{%- elif 'text' in part -%}"
        "{{- part['text'] -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- endif -%}"
        "{{- '<|im_end|>\\n' -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}"
        "{{- '<|im_start|>assistant\\n' -}}"
        "{%- endif -%}"
    )


def train_tiny_tokenizer(
    vocab_size: int = 1536,
    *,
    seed: int = 0,
    chat_template: str | None = None,
    tokens: ChatTokens = QWEN_CHAT_TOKENS,
) -> PreTrainedTokenizerFast:
    """Train a tiny byte-level BPE tokenizer with a family's special tokens (Qwen's by default).

    Args:
        vocab_size: target size of the BPE vocabulary (the 256 byte symbols included; the special tokens come
            on top, with ids right after the BPE vocabulary as in real Qwen checkpoints).
        seed: seed of the generated corpus.
        chat_template: Jinja chat template to attach; defaults to `build_qwen_chat_template()`.
        tokens: the special tokens, eos and pad.

    Returns:
        A `PreTrainedTokenizerFast` (`TokenizersBackend`) with the given eos and pad (Qwen: `<|im_end|>`,
        `<|endoftext|>`), no bos (as the Qwen Instruct tokenizers), and `padding_side="left"` for generation.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(generate_corpus(seed=seed), trainer=trainer)
    # Added after training so their ids follow the BPE vocabulary, in the family's order.
    backend.add_special_tokens(list(tokens.special))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=tokens.eos,
        pad_token=tokens.pad,
        extra_special_tokens=dict(tokens.named) or None,
        unk_token=None,
        bos_token=None,
        padding_side="left",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        chat_template=chat_template if chat_template is not None else build_qwen_chat_template(),
    )
    return tokenizer


def special_token_ids(tokenizer, tokens: tuple[str, ...] = QWEN_SPECIAL_TOKENS) -> dict[str, int]:
    """Ids of the special ``tokens`` (Qwen's by default) in `tokenizer`.

    Args:
        tokenizer: any transformers tokenizer holding those tokens.

    Returns:
        Mapping from special-token string to id.
    """
    return {tok: tokenizer.convert_tokens_to_ids(tok) for tok in tokens}
