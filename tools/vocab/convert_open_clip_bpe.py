#!/usr/bin/env python3
r"""Convert open_clip's CLIP BPE vocabulary into Hugging Face's vocab.json + merges.txt.

sdxld's tokenizer (and every tokenizer/ and tokenizer_2/ folder mkmodel writes) uses the CLIP
BPE vocabulary of OpenAI CLIP: 49408 tokens, the same for CLIP-L and OpenCLIP bigG. It is not
downloadable from a model hub here, but the original merge list ships inside the open-clip-torch
wheel on PyPI as open_clip/bpe_simple_vocab_16e6.txt.gz. This script rebuilds from it the two
files Hugging Face publishes for openai/clip-vit-large-patch14, the way CLIPTokenizer builds its
table from the same list (transformers/models/clip/tokenization_clip.py, open_clip/tokenizer.py):

  merges.txt  "#version: 0.2", then merge lines [1 : 49152 - 256 - 2 + 1] of the gz file
              (48894 merges), every line ending in "\n" (524619 bytes)
  vocab.json  the 256 byte symbols of bytes_to_unicode(), the same 256 with "</w>", the
              48894 merged pairs concatenated, then "<|startoftext|>" (49406) and
              "<|endoftext|>" (49407); written with json.dumps(vocab, ensure_ascii=False), keys
              in id order, on one line, no final newline (961143 bytes)

(Both as transformers' CLIPTokenizer.save_vocabulary wrote them when the openai checkpoints were
converted; later transformers versions re-save vocab.json with indent=2 and sorted keys.)

Uses only the Python standard library. Remake (from the repository root):

  pip download --no-deps open-clip-torch==2.29.0 -d /tmp/oc
  unzip -o /tmp/oc/open_clip_torch-2.29.0-py3-none-any.whl \
      open_clip/bpe_simple_vocab_16e6.txt.gz -d /tmp/oc
  python3 tools/vocab/convert_open_clip_bpe.py \
      /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz models/vocab

open-clip-torch 2.29.0's bpe_simple_vocab_16e6.txt.gz has SHA-256
924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a (checked below).
"""
import argparse
import gzip
import hashlib
import json
import os
import sys

GZ_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
MERGES = 49152 - 256 - 2  # 48894: the merges CLIP uses (the file has more)
VOCAB_SIZE = 49408


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def convert(gz_path, out_dir, check_hash=True):
    raw = open(gz_path, "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    if check_hash and digest != GZ_SHA256:
        sys.exit(f"{gz_path}: SHA-256 {digest} is not open-clip-torch 2.29.0's {GZ_SHA256}; "
                 "pass --any-version to convert it anyway")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    # Line 0 is a version header; the merges CLIP uses are the next MERGES lines.
    merges = lines[1:MERGES + 1]
    if len(merges) != MERGES or any(len(m.split(" ")) != 2 for m in merges):
        sys.exit(f"{gz_path}: expected {MERGES} merge lines of two symbols each after the header")

    symbols = bytes_to_unicode()
    tokens = symbols + [s + "</w>" for s in symbols]
    tokens += ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(tokens) != VOCAB_SIZE or len(vocab) != VOCAB_SIZE:
        sys.exit(f"{gz_path}: built {len(tokens)} tokens ({len(vocab)} distinct), "
                 f"expected {VOCAB_SIZE}")

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(vocab, ensure_ascii=False))
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n" + "".join(m + "\n" for m in merges))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("gz", help="path to bpe_simple_vocab_16e6.txt.gz")
    p.add_argument("out_dir", help="folder to write vocab.json and merges.txt into")
    p.add_argument("--any-version", action="store_true",
                   help="skip the check that the .gz is open-clip-torch 2.29.0's")
    a = p.parse_args()
    convert(a.gz, a.out_dir, check_hash=not a.any_version)


if __name__ == "__main__":
    main()
