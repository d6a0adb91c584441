"""Random-weight models built offline from configs: tiny ones for tests, full-size ones for timing.

A replica is saved with ``save_pretrained`` and loads back through exactly the path a real
checkpoint takes (config.json, safetensors, processor files, chat template). Its weights are
random, so its text is nonsense: use it for plumbing, speed and memory, never for quality.
"""

from __future__ import annotations

from pathlib import Path

from .replica_compact import FAMILY_REPLICAS as COMPACT_FAMILIES
from .replica_parts import CORPUS, QWEN_SPECIALS, fill_vocab, qwen_tokenizer, save
from .replica_qwen_family import FAMILY_REPLICAS as QWEN_FAMILIES

__all__ = ["REPLICAS", "build_replica", "is_current"]

# Raised when a change makes replicas built before it time differently (bench rebuilds older ones).
# 2: a full-size Qwen replica's tokenizer learns English from Python's own documentation.
VERSION = 2

# The Qwen2-VL chat template, reduced to what a single-image conversation uses.
_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _qwen2_vl(out: Path, full: bool, family: str) -> None:
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    tokenizer = qwen_tokenizer(full)
    model_cls, config = _qwen_config(tokenizer, full, family)
    save(model_cls, config, out, "bfloat16" if full else "float32")  # the real checkpoint is bf16
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(), chat_template=_QWEN_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)


def _qwen_config(tokenizer, full: bool, family: str):
    """(the model class, its config) of a Qwen2-VL (``family`` "qwen2_vl") or Qwen2.5-VL replica."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    if full:  # Qwen2-VL-2B-Instruct's published configuration
        text = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768)
        vision = dict(depth=32, embed_dim=1280, hidden_size=1536, mlp_ratio=4, num_heads=16)
        tie = True
    else:
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768)  # as the real one
        vision = dict(depth=1, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=4)
        tie = False
    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24] if full else [2, 1, 1]}
    common = dict(
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=tie,
    )
    vision_common = dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model

        vision = dict(depth=vision["depth"], hidden_size=vision["embed_dim"], out_hidden_size=text["hidden_size"],
                      intermediate_size=vision["embed_dim"] * 2, num_heads=vision["num_heads"],
                      fullatt_block_indexes=[0], window_size=112, **vision_common)
    else:
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model

        vision = {**vision, **vision_common}
    config = Config(text_config={**text, "rope_parameters": rope, **{k: common[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}},
                    vision_config=vision, **common)
    return Model, config


def _blip(out: Path, full: bool) -> None:
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    vocab = wp.get_vocab()
    if full:
        vocab = fill_vocab(vocab, 30524, word_start="", continuation="##")
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]", model_max_length=512)
    ids = {t: vocab[t] for t in specials}
    token_ids = dict(bos_token_id=ids["[DEC]"], sep_token_id=ids["[SEP]"], pad_token_id=ids["[PAD]"],
                     eos_token_id=ids["[SEP]"])
    if full:  # blip-image-captioning-base: ViT-B/16 at 384 px and a BERT-base decoder
        text = dict(vocab_size=30524, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                    num_attention_heads=12, encoder_hidden_size=768)
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                      image_size=384, patch_size=16)
        size = 384
    else:
        text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, encoder_hidden_size=32, max_position_embeddings=512)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      image_size=64, patch_size=16)
        size = 64
    config = BlipConfig(text_config={**text, **token_ids}, vision_config=vision, projection_dim=32 if not full else 512)
    save(BlipForConditionalGeneration, config, out, "float32")  # as Salesforce ships it
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": size, "width": size}), tokenizer=tokenizer).save_pretrained(out)


REPLICAS = {
    "qwen2-vl-2b": ("Qwen/Qwen2-VL-2B-Instruct", lambda out, full: _qwen2_vl(out, full, "qwen2_vl")),
    "qwen2.5-vl": ("Qwen/Qwen2.5-VL-3B-Instruct", lambda out, full: _qwen2_vl(out, full, "qwen2_5_vl")),
    "blip-base": ("Salesforce/blip-image-captioning-base", _blip),
    **QWEN_FAMILIES,  # Qwen3-VL-2B, InternVL3-1B and -2B
    **COMPACT_FAMILIES,  # SmolVLM2-500M, LFM2-VL-450M
}


def build_replica(name: str, out: Path, *, full: bool) -> Path:
    """Build replica ``name`` (a key of REPLICAS) into ``out``; tiny unless ``full``.

    Returns:
        ``out``, a folder that from_pretrained loads like a downloaded checkpoint.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    REPLICAS[name][1](out, full)
    (out / "REPLICA.txt").write_text(_stamp(name, full))
    return out


def is_current(name: str, folder: Path) -> bool:
    """Whether ``folder`` holds a replica of ``name`` (full size or tiny) built by this version of this code."""
    marker = Path(folder) / "REPLICA.txt"
    return marker.exists() and marker.read_text() in (_stamp(name, True), _stamp(name, False))


def _stamp(name: str, full: bool) -> str:
    return (f"Random weights shaped like {REPLICAS[name][0]} ({'full size' if full else 'tiny'}); "
            f"built by a11y_caption.bench.replica, version {VERSION}. Its text is meaningless.\n")
