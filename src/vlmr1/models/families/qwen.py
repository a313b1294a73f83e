"""The Qwen-VL families: Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

Module layout in transformers 5.24 (the same for the three)::

    <Family>ForConditionalGeneration
      .model                      <Family>Model
        .visual                   vision tower incl. patch merger (projector)
        .language_model           text decoder: layers.N.self_attn.{q,k,v,o}_proj, layers.N.mlp.{gate,up,down}_proj
      .lm_head

Forward/generate with images need the processor's ``mm_token_type_ids`` (M-RoPE positions are computed from it): in
transformers 5.24 Qwen2-VL and Qwen3-VL raise without it, while Qwen2.5-VL silently falls back to 1-D positions.
"""

from vlmr1.models.families import Family

QWEN2_5_VL = Family(
    model_type="qwen2_5_vl",
    model_class_name="Qwen2_5_VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VisionTransformerPretrainedModel",
    frame_kind="resized_pixels",
    patch_size=14,
    merge_size=2,
    min_pixels=56 * 56,
    max_pixels=28 * 28 * 16384,
    frame_source="Qwen2.5-VL technical report, arXiv:2502.13923: absolute coordinates on the resized input",
    shared_prefix=True,
)
QWEN2_VL = Family(
    model_type="qwen2_vl",
    model_class_name="Qwen2VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen2_vl.modeling_qwen2_vl:Qwen2VisionTransformerPretrainedModel",
    frame_kind="norm1000",
    patch_size=14,
    merge_size=2,
    min_pixels=56 * 56,
    max_pixels=28 * 28 * 1280,
    frame_source="Qwen2-VL technical report, arXiv:2409.12191: box coordinates normalised to [0, 1000)",
    shared_prefix=True,
)
QWEN3_VL = Family(
    model_type="qwen3_vl",
    model_class_name="Qwen3VLForConditionalGeneration",
    vision_class_path="transformers.models.qwen3_vl.modeling_qwen3_vl:Qwen3VLVisionModel",
    frame_kind="norm1000",
    patch_size=16,
    merge_size=2,
    min_pixels=65536,
    max_pixels=16777216,
    # transformers' qwen3_vl code says nothing about coordinates; the official QwenLM/Qwen3-VL cookbooks
    # (spatial_understanding.ipynb, mobile_agent.ipynb) use relative 0-1000 coordinates
    frame_source="QwenLM/Qwen3-VL cookbooks (spatial_understanding): relative coordinates on a 0-1000 grid",
    shared_prefix=True,
)
