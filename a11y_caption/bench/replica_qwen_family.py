"""Full-size and tiny random replicas of further chat-model families (see replica.py): Qwen3-VL-2B
and InternVL3-1B / -2B, native in transformers (no remote code).

Full size is the published configuration (real vocabulary sizes, tied embeddings as shipped, bf16);
tiny is the same architecture with tiny dimensions (the whole folder well under 1 MB). Each chat
template is the real one reduced to a conversation of text turns with one image, and writes exactly
the image placeholder its processor expands.
"""

from __future__ import annotations

from pathlib import Path

# Qwen3-VL-2B-Instruct's chat template, reduced: no default system turn (Qwen3 dropped it), the
# image as <|vision_start|><|image_pad|><|vision_end|>, which the processor expands.
_QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The InternVL3 -hf chat template, reduced: no system turn by default; the image is one
# <IMG_CONTEXT> and a newline, which the processor expands to <img>, 256 per tile, </img>.
_INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# The tokens InternVL3's tokenizer adds after Qwen2.5's (ids 151665-151673 in the real one), and the
# named ones its processor looks up on the tokenizer.
_INTERNVL_EXTRA = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>",
                   "<video>"]
_INTERNVL_NAMED = {"start_image_token": "<img>", "end_image_token": "</img>",
                   "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}


def _qwen3_vl(out: Path, full: bool) -> None:
    """Qwen/Qwen3-VL-2B-Instruct: a Qwen3-1.7B-shaped language model with interleaved multimodal
    rotary positions, and a 24-layer ViT (16 px patches, 2 x 2 merged) whose layers 5, 11 and 17
    also feed the first language-model layers ("deepstack")."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from .replica_parts import QWEN_SPECIALS, qwen_tokenizer, save

    tokenizer = qwen_tokenizer(full)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    if full:  # the published config.json
        text = dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                    num_attention_heads=16, num_key_value_heads=8, head_dim=128)
        vision = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                      num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17])
        mrope = [24, 20, 20]
    else:
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16)
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32,
                      num_position_embeddings=256, deepstack_visual_indexes=[0])
        mrope = [4, 2, 2]  # sums to head_dim / 2, as [24, 20, 20] does for 128
    tokens = dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    rope = {"rope_type": "default", "rope_theta": 5000000, "mrope_section": mrope, "mrope_interleaved": True}
    config = Qwen3VLConfig(
        text_config={**text, **tokens, "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
                     "hidden_act": "silu", "rope_parameters": rope, "tie_word_embeddings": True},
        vision_config={**vision, "hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "spatial_merge_size": 2,
                       "temporal_patch_size": 2, "in_channels": 3},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    save(Qwen3VLForConditionalGeneration, config, out, "bfloat16" if full else "float32")
    half = dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], patch_size=16, temporal_patch_size=2,
                merge_size=2)
    processor = Qwen3VLProcessor(  # the shipped preprocessor_config.json: up to 16 M pixels, 1000 tokens at 1280x800
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": 65536, "longest_edge": 16777216}, **half),
        video_processor=Qwen3VLVideoProcessor(), tokenizer=tokenizer, chat_template=_QWEN3_VL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


def _internvl_tokenizer(full: bool, vocab_size: int):
    """A Qwen2.5-style byte-level BPE with InternVL's image tokens, named as its processor expects."""
    from transformers import Qwen2Tokenizer

    from .replica_parts import QWEN_SPECIALS, bpe, english, fill_vocab

    specials = QWEN_SPECIALS + _INTERNVL_EXTRA
    vocab, merges = bpe(32000, specials, english()) if full else bpe(400, specials)
    if full:  # every id the model can emit decodes to text, as with the real tokenizer
        vocab = fill_vocab(vocab, vocab_size, word_start="Ġ", continuation="")
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, extra_special_tokens=dict(_INTERNVL_NAMED))
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def _internvl(out: Path, full: bool, size: str) -> None:
    """OpenGVLab/InternVL3-1B-hf or -2B-hf (``size`` "1b" or "2b"): InternViT-300M on 448 px tiles
    (14 px patches; pixel shuffle 0.5 -> 256 tokens a tile), a two-layer MLP projector, and a
    Qwen2.5-0.5B- or 1.5B-shaped language model with its own (untied) output head."""
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    from .replica_parts import save

    tokenizer = _internvl_tokenizer(full, 151674)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<IMG_CONTEXT>")}
    if full:
        text = (dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14)
                if size == "1b" else
                dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12))
        text.update(vocab_size=151674, num_key_value_heads=2)
        vision = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)
    else:
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    config = InternVLConfig(
        text_config={**text, "model_type": "qwen2", "max_position_embeddings": 32768, "rms_norm_eps": 1e-6,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "tie_word_embeddings": False, "use_sliding_window": False},
        vision_config={**vision, "image_size": 448, "patch_size": 14, "attention_bias": True,  # InternViT's qkv bias
                       "norm_type": "layer_norm", "layer_scale_init_value": 0.1, "hidden_act": "gelu",
                       "use_absolute_position_embeddings": True, "use_qk_norm": False},
        image_token_id=ids["<IMG_CONTEXT>"], image_seq_length=256, downsample_ratio=0.5,
        projector_hidden_act="gelu", vision_feature_layer=-1, vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    save(InternVLForConditionalGeneration, config, out, "bfloat16" if full else "float32")
    imagenet = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    processor = InternVLProcessor(  # the processor tiles (crop_to_patches) though the image processor's file says not
        image_processor=GotOcr2ImageProcessor(size={"height": 448, "width": 448}, crop_to_patches=False,
                                              min_patches=1, max_patches=12, **imagenet),
        video_processor=InternVLVideoProcessor(size={"height": 448, "width": 448}, **imagenet),
        tokenizer=tokenizer, image_seq_length=256, chat_template=_INTERNVL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


FAMILY_REPLICAS = {
    "qwen3-vl-2b": ("Qwen/Qwen3-VL-2B-Instruct", _qwen3_vl),
    "internvl3-1b": ("OpenGVLab/InternVL3-1B-hf", lambda out, full: _internvl(out, full, "1b")),
    "internvl3-2b": ("OpenGVLab/InternVL3-2B-hf", lambda out, full: _internvl(out, full, "2b")),
}
