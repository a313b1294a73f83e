"""Full-size architectures with random weights, for GPU benchmarks and smoke runs without a download.

The numbers are the released Qwen2.5-VL-3B-Instruct ``config.json``; the token ids come from the given tokenizer
(the tiny local one), so the model pairs with vlmr1's offline processor. Speed and memory match the real model;
its outputs are noise.
"""

from __future__ import annotations

from typing import Any


def qwen2_5_vl_3b_config(tokenizer: Any):
    """Qwen2.5-VL-3B's architecture with ``tokenizer``'s special-token ids.

    Args:
        tokenizer: a tokenizer with the Qwen special tokens (e.g. ``vlmr1.models.train_tiny_tokenizer()``).

    Returns:
        A ``Qwen2_5_VLConfig`` (36 text layers of width 2048, 32 vision layers of width 1280).
    """
    from transformers import Qwen2_5_VLConfig

    from vlmr1.models.tokenizer import special_token_ids

    ids = special_token_ids(tokenizer)
    text = dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
                hidden_act="silu", sliding_window=32768, use_sliding_window=False, max_window_layers=70,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
                pad_token_id=tokenizer.pad_token_id, bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], tie_word_embeddings=True)
    vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3, out_hidden_size=2048,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                  fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu")
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                              video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                              vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True)
    config.bos_token_id, config.eos_token_id = ids["<|endoftext|>"], ids["<|im_end|>"]
    config.pad_token_id = tokenizer.pad_token_id
    return config
