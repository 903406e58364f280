#!/usr/bin/env python3
"""image_goldens.py — golden files for sdxld's Lanczos resize and VaeImageProcessor.

    /tmp/refvenv/bin/python tools/reference/image_goldens.py        (from the repository root)

Writes (replacing) two files, deterministic (same bytes on every run with the pinned versions:
Pillow 11.0.0, diffusers 0.31.0, torch 2.5.1, numpy 1.26.4):

tests/golden/data/image_resize.safetensors — PIL Image.resize((w, h), Image.LANCZOS) on RGB:
    resize.<i>.input   uint8 [h_in, w_in, 3]
    resize.<i>.output  uint8 [h_out, w_out, 3]
  for i = 0, 1, ... over size pairs that shrink, enlarge, shrink one side and enlarge the other,
  change only one side, and go to and from 1 pixel. Exact: sdxld must match every byte.

tests/golden/data/image_processor.safetensors — diffusers' VaeImageProcessor as the SDXL
pipelines build it (vae_scale_factor 8, resample lanczos, do_normalize):
    pre.<i>.input    uint8 [h, w, 3]     the PIL image given to preprocess(image) (no height or
                                         width: each side rounded down to a multiple of 8,
                                         resized with Lanczos when that changes it)
    pre.<i>.output   float32 [1, 3, h8, w8]   preprocess's result (diffusers' NCHW)
    post.<i>.input   float32 [1, 3, h, w]     the NCHW tensor given to postprocess
    post.<i>.output  uint8 [h, w, 3]          postprocess(output_type="pil") as a numpy array
  post inputs include values outside [-1, 1], infinities, and values next to every rounding
  tie of (x / 2 + 0.5) * 255. Exact (pre is float32 arithmetic in the same order).
  Tensors are laid out as diffusers has them (NCHW), like every golden file; sdxld's image
  processor works in NHWC, and its test transposes.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from diffusers.image_processor import VaeImageProcessor
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "data")

# (input width, height) -> (output width, height)
RESIZE_CASES = [
    ((67, 45), (64, 40)),     # what preprocess does to a size that is not a multiple of 8
    ((100, 75), (96, 72)),
    ((64, 64), (128, 128)),   # enlarge 2x
    ((64, 64), (32, 32)),     # shrink 2x
    ((31, 17), (7, 5)),       # shrink a lot (wide filter)
    ((9, 13), (40, 3)),       # enlarge one side, shrink the other
    ((80, 60), (80, 24)),     # vertical pass only
    ((80, 60), (33, 60)),     # horizontal pass only
    ((120, 90), (119, 91)),   # almost the same size
    ((1, 1), (5, 3)),         # from one pixel
    ((37, 23), (1, 1)),       # to one pixel
    ((300, 180), (256, 154)), # a thumbnail
]

PRE_SIZES = [(64, 64), (67, 45), (100, 75), (8, 8), (8, 15), (40, 96)]  # (width, height)


def picture(w, h, seed):
    """Noise over gradients and hard edges: exercises negative lobes and clipping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                     ((x // 3 + y // 2) % 2) * 255], axis=-1)
    noise = rng.integers(-60, 61, size=(h, w, 3))
    img = np.clip(base + noise, 0, 255)
    img[rng.random((h, w)) < 0.05] = [255, 255, 255]
    img[rng.random((h, w)) < 0.05] = [0, 0, 0]
    return img.astype(np.uint8)


def post_inputs(h, w, seed):
    """Values near every rounding tie, out of range, infinities, and random ones."""
    vals = []
    for k in range(256):
        t = np.float32((k + 0.5) / 255)
        x = np.float32((t - np.float32(0.5)) * np.float32(2))
        for d in range(-3, 4):
            vals.append(np.float32(x + np.float32(d) * np.spacing(x if x != 0 else np.float32(1e-7))))
    vals += [-1.0, 1.0, 0.0, -0.0, -1.5, 1.5, 3.0, -7.0, np.inf, -np.inf, 1e-30, -1e-30]
    rng = np.random.default_rng(seed)
    n = h * w * 3
    vals = np.array(vals, dtype=np.float32)
    rest = rng.uniform(-1.2, 1.2, size=n - len(vals)).astype(np.float32)
    out = np.concatenate([vals, rest])
    rng.shuffle(out)
    return out.reshape(1, 3, h, w)


def main():
    tensors = {}
    for i, ((wi, hi), (wo, ho)) in enumerate(RESIZE_CASES):
        src = picture(wi, hi, seed=100 + i)
        dst = np.array(Image.fromarray(src).resize((wo, ho), Image.LANCZOS))
        tensors[f"resize.{i}.input"] = src
        tensors[f"resize.{i}.output"] = dst
    save_file(tensors, os.path.join(OUT, "image_resize.safetensors"))

    proc = VaeImageProcessor(vae_scale_factor=8)
    tensors = {}
    for i, (w, h) in enumerate(PRE_SIZES):
        src = picture(w, h, seed=200 + i)
        out = proc.preprocess(Image.fromarray(src))  # [1, 3, h8, w8]
        assert out.dtype == torch.float32
        tensors[f"pre.{i}.input"] = src
        tensors[f"pre.{i}.output"] = out.numpy()
    for i, (h, w) in enumerate([(48, 40), (24, 32)]):
        x = post_inputs(h, w, seed=300 + i)
        pil = proc.postprocess(torch.from_numpy(x), output_type="pil")[0]
        tensors[f"post.{i}.input"] = x
        tensors[f"post.{i}.output"] = np.array(pil)
    save_file(tensors, os.path.join(OUT, "image_processor.safetensors"))
    print(f"wrote image_resize.safetensors ({len(RESIZE_CASES)} cases) and "
          f"image_processor.safetensors to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
