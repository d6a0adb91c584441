"""What the replicas of every family share: tokenizers learnt offline from English that every
Python has, and saving a random model in its shipped dtype (replica.py and the family modules)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CORPUS", "QWEN_SPECIALS", "bpe", "english", "fill_vocab", "qwen_tokenizer", "save"]

# Enough text for a byte-level BPE to learn the usual English pieces.
CORPUS = [
    "A screenshot of a window with a button labelled OK and a menu bar.",
    "The screen shows a text editor, a terminal and an error message.",
    "a picture of a dog sitting on a couch next to a red ball",
    "Describe this image. Write one concise sentence of alt text.",
    "File Edit View Help Save Cancel Settings Search Open Close",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:",
]

QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]

def english() -> list[str]:
    """English prose that every Python has: the language reference topics and the standard
    library's docstrings (about 1.4 M characters)."""
    import ast
    import sysconfig

    from pydoc_data.topics import topics

    texts = list(topics.values())
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def bpe(vocab_size: int, specials: list[str], corpus: list[str] = CORPUS):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def fill_vocab(vocab: dict[str, int], size: int, *, word_start: str, continuation: str) -> dict[str, int]:
    """Pad a small trained vocabulary to ``size`` with made-up pieces: three in four start a word
    (about 1.3 tokens per word, as English text has), so random ids decode to word-like text."""
    vocab = dict(vocab)
    i = 0
    while len(vocab) < size:
        piece = f"{word_start}w{i}" if i % 4 else f"{continuation}x{i}"
        vocab.setdefault(piece, len(vocab))
        i += 1
    return vocab


def qwen_tokenizer(full: bool):
    from transformers import Qwen2Tokenizer

    # A full-size replica times prompts, so its tokenizer must split English about as finely as a
    # real one: learnt from English prose it takes ~0.3 tokens per character of a grounded screen
    # prompt, where the 400-piece tiny one took ~0.7 (and so overstated every prompt's cost).
    vocab, merges = bpe(32000, QWEN_SPECIALS, english()) if full else bpe(400, QWEN_SPECIALS)
    if full:  # every id the model can emit must decode to text, as with the real tokenizer
        vocab = fill_vocab(vocab, 151936, word_start="Ġ", continuation="")
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    tokenizer.eos_token = "<|im_end|>"
    return tokenizer


def save(model_cls, config, out: Path, dtype: str) -> None:
    import torch

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # build in the shipped dtype: no fp32 detour
    try:
        config.dtype = dtype
        model = model_cls(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.save_pretrained(out, safe_serialization=True)
