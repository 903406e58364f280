#!/usr/bin/env python3
"""vae_tiled_goldens.py — golden file for sdxld's tiled VAE encode and decode.

    /tmp/refvenv/bin/python tools/reference/vae_tiled_goldens.py --model-dir DIR/tiny-a

DIR/tiny-a is a model directory written by `mkmodel --config models/configs/tiny-a --seed 1
--dtype fp32` (as for make_goldens.py). Writes (replacing)
tests/golden/data/vae_tiled_tiny-a.safetensors, deterministic with the pinned versions of
tools/reference/requirements.txt, in the conventions of tests/golden/data/README.md (NCHW, F32;
knobs as tensors of shape [1]).

AutoencoderKL with enable_tiling() and its knobs set as attributes (tile_sample_min_size,
tile_latent_min_size, tile_overlap_factor), at sizes that need several tiles in both directions,
including edge tiles smaller than the others:

    enc.image                F32 [2, 3, 64, 88]   VAE input in [-1, 1] (make_picture and its
                                                 180° rotation, through VaeImageProcessor)
    enc.mean, enc.logvar     F32 [2, C, 8, 11]    vae.encode(image).latent_dist (logvar clamped)
    enc.tile_sample_size, enc.tile_latent_size   I64 [1]    32, 4
    enc.overlap_factor       F64 [1]              0.25
    dec.latents              F32 [2, C, 8, 11]    randn (seed 300) / scaling_factor
    dec.out                  F32 [2, 3, 64, 88]   vae.decode(latents).sample
    dec.tile_sample_size, dec.tile_latent_size, dec.overlap_factor    32, 4, 0.25
    dec_overlap50.*          the same for latents [1, C, 8, 8] (seed 301), overlap 0.5

Tolerance: relative L2 1e-4 per tensor (fp32 CPU), as the untiled VAE goldens.
"""
import argparse
import os
import sys

import PIL.Image
import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import goldenlib  # noqa: E402
import golden_models  # noqa: E402
from diffusers import AutoencoderKL  # noqa: E402


def set_tiling(vae, sample, latent, overlap):
    vae.enable_tiling()
    vae.tile_sample_min_size = sample
    vae.tile_latent_min_size = latent
    vae.tile_overlap_factor = overlap


def add_knobs(g, name, sample, latent, overlap):
    g.add(f"{name}.tile_sample_size", sample, torch.int64)
    g.add(f"{name}.tile_latent_size", latent, torch.int64)
    g.add(f"{name}.overlap_factor", overlap, torch.float64)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True,
                   help="tiny-a model directory (mkmodel, seed 1, fp32)")
    p.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "data",
                                                 "vae_tiled_tiny-a.safetensors"))
    args = p.parse_args()
    goldenlib.refuse_forbidden_packages()
    goldenlib.setup_determinism()
    goldenlib.refuse_other_cpus()

    vae = golden_models.load_component(AutoencoderKL, args.model_dir, "vae")
    g = goldenlib.GoldenFile("tiny-a")
    g.metadata["tool"] = "tools/reference/vae_tiled_goldens.py"
    processor = VaeImageProcessor(vae_scale_factor=8)

    pictures = [golden_models.make_picture(64, 88)]
    pictures.append(np.ascontiguousarray(pictures[0][::-1, ::-1]))
    image = torch.cat([processor.preprocess(PIL.Image.fromarray(x)) for x in pictures])
    assert list(image.shape) == [2, 3, 64, 88]
    set_tiling(vae, 32, 4, 0.25)
    dist = vae.encode(image).latent_dist
    g.add("enc.image", image)
    g.add("enc.mean", dist.mean)
    g.add("enc.logvar", dist.logvar)
    add_knobs(g, "enc", 32, 4, 0.25)

    for name, seed, shape, overlap in [("dec", 300, [2, 4, 8, 11], 0.25),
                                       ("dec_overlap50", 301, [1, 4, 8, 8], 0.5)]:
        set_tiling(vae, 32, 4, overlap)
        latents = torch.randn(shape, generator=goldenlib.generator(seed))
        latents = latents / vae.config.scaling_factor
        g.add(f"{name}.latents", latents)
        g.add(f"{name}.out", vae.decode(latents).sample)
        add_knobs(g, name, 32, 4, overlap)
    g.write(args.out)


if __name__ == "__main__":
    main()
