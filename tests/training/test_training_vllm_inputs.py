"""vLLM rollout inputs (TRL issue #6294 guard), checked on CPU without vLLM, on a real processor's output."""

import pytest
from PIL import Image
from transformers import AutoProcessor

from vlmr1.training.vllm_inputs import collapse_image_runs, vllm_prompt_ids


@pytest.fixture(scope="module")
def processor(tiny_qwen25vl_dir):
    return AutoProcessor.from_pretrained(tiny_qwen25vl_dir)


def expanded_and_plain(processor, num_images):
    content = [{"type": "image"}] * num_images + [{"type": "text", "text": "How many?"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    images = [Image.new("RGB", (56, 84), (i * 40, 0, 0)) for i in range(num_images)]
    expanded = processor(text=[text], images=images or None)["input_ids"][0]
    plain = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    return expanded, plain, images


@pytest.mark.parametrize("num_images", [1, 2])
def test_colocate_gets_what_the_tokenizer_alone_produces(processor, num_images):
    expanded, plain, images = expanded_and_plain(processor, num_images)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert expanded.count(pad) > num_images  # the processor expanded every image
    assert vllm_prompt_ids([expanded], [images], "colocate", {pad}) == [plain]
    assert vllm_prompt_ids([expanded], [images], "server", {pad}) == [expanded]


def test_text_only_prompts_and_batches_are_unchanged(processor):
    expanded, plain, images = expanded_and_plain(processor, 1)
    text_ids, _, _ = expanded_and_plain(processor, 0)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert vllm_prompt_ids([expanded, text_ids], [images, None], "colocate", {pad}) == [plain, text_ids]
    assert vllm_prompt_ids([text_ids], None, "colocate", {pad}) == [text_ids]


def test_placeholder_count_mismatch_is_refused():
    assert collapse_image_runs([1, 9, 9, 9, 2, 9, 9, 3], {9}) == [1, 9, 2, 9, 3]
    with pytest.raises(ValueError, match="2 image\\(s\\) but 1 image placeholder"):
        vllm_prompt_ids([[1, 9, 9, 9, 9, 3]], [["a", "b"]], "colocate", {9})


class RecordingVLLM:
    """Stands in for TRL's vLLM generation object (vLLM does not install on this CPU machine): records its input."""

    def __init__(self):
        self.prompts = None

    def generate(self, prompts, images, num_generations, profiler=None):
        self.prompts = prompts
        return prompts, [[7, 8]] * len(prompts), [[[-0.1], [-0.2]]] * len(prompts), None

    def sync_weights(self):
        pass


def test_trainer_sends_vllm_one_placeholder_per_image(processor, tiny_qwen25vl_dir, tmp_path):
    from datasets import Dataset

    from vlmr1.models import get_family
    from vlmr1.training.config import VLMR1GRPOConfig
    from vlmr1.training.trainer import VLMGRPOTrainer

    model = get_family(tiny_qwen25vl_dir).load(tiny_qwen25vl_dir)
    args = VLMR1GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2,
                           report_to="none", gradient_checkpointing=False)
    trainer = VLMGRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
                             args=args, train_dataset=Dataset.from_dict({"prompt": ["x", "y"]}),
                             processing_class=processor)
    recorder = RecordingVLLM()
    trainer.use_vllm, trainer.vllm_generation, trainer.args.vllm_mode = True, recorder, "colocate"
    trainer._last_loaded_step = trainer.state.global_step
    expanded, plain, images = expanded_and_plain(processor, 2)
    completion_ids, _ = trainer._generate_single_turn([expanded, expanded], [images, images], {}, 2)
    assert recorder.prompts == [plain, plain] and completion_ids == [[7, 8], [7, 8]]
