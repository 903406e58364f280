"""golden_tokenizer.py — tokenizer.safetensors: ids of SDXL's two CLIPTokenizers.

The tokenizers are built exactly as mkmodel lays them out in every model directory: sdxl-turbo's
tokenizer/ and tokenizer_2/ configs plus the shared CLIP vocabulary in models/vocab. The prompts
aim at the places a re-implementation goes wrong: Unicode normalisation and lower-casing,
punctuation and digit splitting, whitespace, emoji bytes, special-token text typed by a user,
`!` (tokenizer_2's pad token, also an added token), and truncation at exactly 75/76 tokens.
"""

import os
import shutil
import tempfile

import torch
from transformers import CLIPTokenizer

from goldenlib import GoldenFile

MAX_LENGTH = 77

PROMPTS = [
    "",
    "a photo of a cat",
    "A Photo Of A CAT, HIGHLY DETAILED",
    "a highly detailed photograph of an astronaut riding a horse on the moon, " * 6,
    "一只猫坐在窗台上",
    "Кошка сидит на окне",
    "Μια γάτα κάθεται στο παράθυρο",
    "café naïve résumé Ångström",
    "cafe\u0301 (e + combining acute)",
    "! !! !!!",
    "a,b.c;d",
    "1234567 3.14 2024-01-01",
    "a   cat\t\twith\n\nspaces  ",
    "   ",
    "a cat 🐱 and a smile 😀",
    "family 👨\u200d👩\u200d👧\u200d👦 and 👍🏽 thumbs",
    "it's they'll we're I've I'm you'd",
    "IT'S THEY'LL DON'T",
    "a\x01b\x07c\x1bd\x7fe\x0cf",
    "<|endoftext|> typed in the prompt",
    "<|startoftext|>a cat<|endoftext|>",
    "cat " * 75,
    "cat " * 76,
    "hello!world!!",
    "“quotes” ‘single’ — dash … ellipsis",
    "日本語とEnglishの混合 text",
    "ﬁ ligature, ½, ＡＢＣ fullwidth",
    "\u00a0non-breaking\u2003em\u200bzero-width",
    "고양이 قطة बिल्ली แมว",
    "x" * 300,
    "déjà vu, Straße, İstanbul",
    "!!!",
]

# Prompts whose length between BOS and EOS is pinned (the truncation edge).
EXACT_LENGTHS = {"cat " * 75: 75, "cat " * 76: 76}


def load_tokenizers(configs_dir, vocab_dir):
    """(tokenizer, tokenizer_2) from a model config dir and the vocabulary, as mkmodel lays them out."""
    tokenizers = []
    with tempfile.TemporaryDirectory(prefix="sdxld-tok-") as tmp:
        for sub in ("tokenizer", "tokenizer_2"):
            d = os.path.join(tmp, sub)
            shutil.copytree(os.path.join(configs_dir, sub), d)
            for name in ("vocab.json", "merges.txt"):
                shutil.copyfile(os.path.join(vocab_dir, name), os.path.join(d, name))
            tokenizers.append(CLIPTokenizer.from_pretrained(d))
    return tokenizers


def ids_padded(tok, prompt):
    """As diffusers' encode_prompt calls the tokenizer."""
    return tok(prompt, padding="max_length", max_length=MAX_LENGTH, truncation=True,
               return_tensors="pt").input_ids[0]


def ids_full(tok, prompt):
    return torch.tensor(tok(prompt, verbose=False).input_ids, dtype=torch.int64)


def make(out_path, configs_dir, vocab_dir):
    tok1, tok2 = load_tokenizers(configs_dir, vocab_dir)
    if type(tok1).__name__ != "CLIPTokenizer" or tok1.is_fast:
        raise RuntimeError("expected transformers' slow CLIPTokenizer (the one sdxld reproduces)")
    g = GoldenFile()
    g.meta("count", str(len(PROMPTS)))
    for i, prompt in enumerate(PROMPTS):
        g.meta(f"prompt.{i}", prompt)
        full1 = ids_full(tok1, prompt)
        if prompt in EXACT_LENGTHS and len(full1) - 2 != EXACT_LENGTHS[prompt]:
            raise RuntimeError(f"prompt {i} is {len(full1) - 2} tokens, not {EXACT_LENGTHS[prompt]}")
        g.add(f"ids1.{i}", ids_padded(tok1, prompt), torch.int64)
        g.add(f"ids2.{i}", ids_padded(tok2, prompt), torch.int64)
        g.add(f"ids1_full.{i}", full1, torch.int64)
        g.add(f"ids2_full.{i}", ids_full(tok2, prompt), torch.int64)
    g.write(out_path)
