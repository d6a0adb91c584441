"""Full-size and tiny random replicas of two compact chat-model families (see replica.py):
SmolVLM2-500M-Video-Instruct (SigLIP, pixel-shuffle connector, Llama) and LFM2-VL-450M (SigLIP2
NaFlex, pixel-unshuffle projector, LFM2's hybrid of short convolutions and attention).

Both are native in transformers: a replica loads with AutoProcessor and
AutoModelForImageTextToText, no remote code. Full size takes the published configurations
(/work/shared/MODELS.md sections 3 and 4) in bfloat16, as shipped; tiny keeps each architecture
(layer kinds, tiles, image tokens per tile) with dimensions of a few dozen, under 1 MB a folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FAMILY_REPLICAS"]

# -- SmolVLM2 ---------------------------------------------------------------------------------------

_SMOL_BASE = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # SmolLM2's first ids
# The image tokens SmolVLMProcessor writes: a 512 px tile grid of up to 6 x 6 and the global view.
_SMOL_IMAGE = ["<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
               "<fake_token_around_image>", "<image>"]
_SMOL_END = "<end_of_utterance>"  # the end of every turn, and so of an answer

# SmolVLM2's chat template, reduced to what a single-image conversation with text turns uses:
# "<|im_start|>User:<image>Describe.<end_of_utterance>\nAssistant: ...". The processor expands
# <image> into tiles, each "<fake_token_around_image><row_r_col_c>" + 64 <image>, and the global view.
_SMOL_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}:{% else %}: {% endif %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _smolvlm(out: Path, full: bool) -> None:
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    from .replica_parts import save

    tokenizer = _smol_tokenizer(full)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*_SMOL_BASE, "<image>", _SMOL_END)}
    if full:  # SmolVLM2-500M-Video-Instruct's published configuration
        text = dict(vocab_size=49280, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                    num_attention_heads=15, num_key_value_heads=5, head_dim=64)
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    else:
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    tokens = dict(bos_token_id=ids["<|im_start|>"], eos_token_id=ids[_SMOL_END], pad_token_id=ids["<|im_end|>"])
    text.update(model_type="llama", max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, **tokens)
    # 512 px tiles of 16 px patches, pixel-shuffled by 4: 64 image tokens a tile, tiny or not.
    config = SmolVLMConfig(text_config=text, vision_config={**vision, "image_size": 512, "patch_size": 16},
                           scale_factor=4, image_token_id=ids["<image>"], tie_word_embeddings=False, **tokens)
    save(SmolVLMForConditionalGeneration, config, out, "bfloat16" if full else "float32")
    SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512}),
        video_processor=SmolVLMVideoProcessor(size={"longest_edge": 512}, max_image_size={"longest_edge": 512}),
        tokenizer=tokenizer, image_seq_len=64, chat_template=_SMOL_CHAT_TEMPLATE,
    ).save_pretrained(out)


def _smol_tokenizer(full: bool):
    """SmolVLM2's layout: SmolLM2's 49152 pieces, the image tokens after them (<image> is 49190)
    and <end_of_utterance> last (49279); tiny, the same tokens after a 400-piece vocabulary."""
    from transformers import GPT2Tokenizer

    from .replica_parts import bpe, english, fill_vocab

    vocab, merges = bpe(32000, _SMOL_BASE, english()) if full else bpe(400, _SMOL_BASE)
    if full:
        vocab = fill_vocab(vocab, 49152, word_start="Ġ", continuation="")
    for token in _SMOL_IMAGE:
        vocab[token] = len(vocab)
    if full:  # every id the model can emit must decode to text, as with the real tokenizer
        vocab = fill_vocab(vocab, 49279, word_start="Ġ", continuation="")
    vocab[_SMOL_END] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges, unk_token="<|endoftext|>", bos_token="<|im_start|>",
                              eos_token=_SMOL_END, pad_token="<|im_end|>")
    tokenizer.add_special_tokens({"additional_special_tokens": [*_SMOL_IMAGE, _SMOL_END]})
    return tokenizer


# -- LFM2-VL ----------------------------------------------------------------------------------------

_LFM2_BASE = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>",
              "<|im_start|>", "<|im_end|>"]
# The image tokens Lfm2VlProcessor writes: a grid of up to 10 tiles a side, the thumbnail, the bounds.
_LFM2_IMAGE = ["<image>", *(f"<|img_row_{r}_col_{c}|>" for r in range(1, 11) for c in range(1, 11)),
               "<|img_thumbnail|>", "<|image_start|>", "<|image_end|>"]

# LFM2-VL's chat template, reduced to what a single-image conversation with text turns uses. The
# processor expands <image> into "<|image_start|>" + tiles ("<|img_row_r_col_c|>" + 256 <image>)
# or one picture's <image> tokens + "<|image_end|>".
_LFM2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _lfm2_vl(out: Path, full: bool) -> None:
    from transformers import Lfm2VlConfig, Lfm2VlForConditionalGeneration, Lfm2VlImageProcessor, Lfm2VlProcessor

    from .replica_parts import save

    tokenizer = _lfm2_tokenizer(full)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|pad|>", "<|startoftext|>", "<|im_end|>", "<image>")}
    if full:  # LFM2-VL-450M: LFM2-350M and SigLIP2 base NaFlex
        # block_ff_dim 6656 -> 2/3 rounded up to a multiple of 256: an effective FFN of 4608.
        text = dict(vocab_size=65536, hidden_size=1024, block_ff_dim=6656, block_multiple_of=256,
                    num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=8,
                    full_attn_idxs=[2, 5, 8, 10, 12, 14])
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
        projector = 2560
    else:  # conv, attention, conv, attention: both kinds of layer and of cache
        text = dict(vocab_size=len(tokenizer), hidden_size=32, block_ff_dim=96, block_multiple_of=16,
                    num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, full_attn_idxs=[1, 3])
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
        projector = 32
    tokens = dict(bos_token_id=ids["<|startoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|pad|>"])
    text.update(model_type="lfm2", max_position_embeddings=128000, norm_eps=1e-5, conv_L_cache=3,
                block_auto_adjust_ff_dim=True, block_ffn_dim_multiplier=1.0, tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, **tokens)
    vision.update(model_type="siglip2_vision_model", patch_size=16, num_patches=256, vision_use_head=False)
    config = Lfm2VlConfig(text_config=text, vision_config=vision, image_token_id=ids["<image>"],
                          projector_hidden_size=projector, downsample_factor=2, tie_word_embeddings=True, **tokens)
    save(Lfm2VlForConditionalGeneration, config, out, "bfloat16" if full else "float32")
    # 512 px tiles of 16 px patches, unshuffled by 2: 256 image tokens a tile; no thumbnail (450M).
    Lfm2VlProcessor(image_processor=Lfm2VlImageProcessor(use_thumbnail=False), tokenizer=tokenizer,
                    chat_template=_LFM2_CHAT_TEMPLATE).save_pretrained(out)


def _lfm2_tokenizer(full: bool):
    """LFM2's layout: its eight named tokens, reserved ones up to <image> at 396, the tile tokens
    (to 499) and 65536 pieces in all; tiny, the named and image tokens before 400 pieces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from .replica_parts import bpe, english, fill_vocab

    reserved = [f"<|reserved_{i}|>" for i in range(len(_LFM2_BASE), 396)] if full else []
    specials = [*_LFM2_BASE, *reserved, *_LFM2_IMAGE]
    vocab, merges = bpe(32000, specials, english()) if full else bpe(len(specials) + 400, specials)
    if full:  # every id the model can emit must decode to text, as with the real tokenizer
        vocab = fill_vocab(vocab, 65536, word_start="Ġ", continuation="")
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|startoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|pad|>", additional_special_tokens=specials[1:])


FAMILY_REPLICAS = {
    "smolvlm2-500m": ("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", _smolvlm),
    "lfm2-vl-450m": ("LiquidAI/LFM2-VL-450M", _lfm2_vl),
}
