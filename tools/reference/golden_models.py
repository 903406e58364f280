"""golden_models.py — loads a model directory strictly, and writes the per-component goldens:
text_<model>, unet_<model> and vae_<model>.safetensors (schema: tests/golden/data/README.md).

Loading goes through diffusers' and transformers' own from_pretrained, one component at a time
with output_loading_info=True, and stops on any missing, unexpected or mismatched weight: a
golden made from a partly random-initialised model would test nothing.
"""

import json
import os

import numpy as np
import PIL.Image
import torch
from diffusers import (AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from goldenlib import GoldenFile, generator

TEXT_PROMPTS = [
    "",
    "a photo of a cat",
    "a highly detailed photograph of an astronaut riding a horse on the moon, " * 6,
    "café naïve 一只猫 Кошка",
    "hello!world !! !!!",
    "a cat <|endoftext|> typed in the prompt",
]
CFG_CASES = [("zero", "a photo of a cat", None), ("neg", "a photo of a cat", "blurry, low quality")]


def check_loading_info(model_dir, sub, info):
    problems = {k: info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")
                if info.get(k)}
    if problems:
        raise SystemExit(f"make_goldens: {os.path.join(model_dir, sub)} does not load cleanly into "
                         f"diffusers/transformers: {json.dumps(problems, default=str)[:4000]}")


def load_component(cls, model_dir, sub):
    model, info = cls.from_pretrained(model_dir, subfolder=sub, output_loading_info=True,
                                      torch_dtype=torch.float32)
    check_loading_info(model_dir, sub, info)
    for name, p in model.state_dict().items():
        if p.is_floating_point() and p.dtype != torch.float32:
            raise SystemExit(f"make_goldens: {sub}: {name} loaded as {p.dtype}, expected float32")
    return model.eval()


def load_components(model_dir):
    """Every component of an SDXL model directory, each checked."""
    with open(os.path.join(model_dir, "model_index.json"), encoding="utf-8") as f:
        index = json.load(f)
    return dict(
        vae=load_component(AutoencoderKL, model_dir, "vae"),
        text_encoder=load_component(CLIPTextModel, model_dir, "text_encoder"),
        text_encoder_2=load_component(CLIPTextModelWithProjection, model_dir, "text_encoder_2"),
        tokenizer=CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer_2"),
        unet=load_component(UNet2DConditionModel, model_dir, "unet"),
        scheduler=EulerAncestralDiscreteScheduler.from_pretrained(model_dir, subfolder="scheduler"),
        force_zeros_for_empty_prompt=index.get("force_zeros_for_empty_prompt", True),
    )


def load_img2img(model_dir):
    pipe = StableDiffusionXLImg2ImgPipeline(**load_components(model_dir), add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_txt2img(model_dir):
    pipe = StableDiffusionXLPipeline(**load_components(model_dir), add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_picture(height, width):
    """A deterministic RGB picture (uint8 [H, W, 3]): horizontal and vertical gradients, a disc
    with a hard edge, and a band of 4-pixel black/white stripes."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    r = x * 255 // (width - 1)
    g = y * 255 // (height - 1)
    cy, cx, radius = height // 2, width // 2, min(height, width) // 3
    b = np.where((y - cy) ** 2 + (x - cx) ** 2 <= radius * radius, 230, 30)
    img = np.stack([r, g, b], axis=-1)
    band = (y >= height // 8) & (y < height // 8 + 6)
    stripes = np.where((x // 4) % 2 == 0, 0, 255)
    img = np.where(band[..., None], stripes[..., None], img)
    return img.astype(np.uint8)


def text_ids(tok, prompt):
    return tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
               return_tensors="pt").input_ids


def make_text(out_path, model, pipe):
    g = GoldenFile(model)
    for i, prompt in enumerate(TEXT_PROMPTS):
        g.meta(f"prompt.{i}", prompt)
        ids1, ids2 = text_ids(pipe.tokenizer, prompt), text_ids(pipe.tokenizer_2, prompt)
        out1 = pipe.text_encoder(ids1, output_hidden_states=True)
        out2 = pipe.text_encoder_2(ids2, output_hidden_states=True)
        embeds, _, pooled, _ = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
        g.add(f"p{i}.ids1", ids1, torch.int64)
        g.add(f"p{i}.ids2", ids2, torch.int64)
        g.add(f"p{i}.hidden1", out1.hidden_states[-2])
        g.add(f"p{i}.hidden2", out2.hidden_states[-2])
        g.add(f"p{i}.last2", out2.last_hidden_state)
        g.add(f"p{i}.pooled2", out2.text_embeds)
        g.add(f"p{i}.prompt_embeds", embeds)
        g.add(f"p{i}.pooled_embeds", pooled)
    for name, prompt, negative in CFG_CASES:
        g.meta(f"cfg_{name}.prompt", prompt)
        if negative is not None:
            g.meta(f"cfg_{name}.negative_prompt", negative)
        embeds, neg_embeds, pooled, neg_pooled = pipe.encode_prompt(
            prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt=negative)
        g.add(f"cfg_{name}.prompt_embeds", embeds)
        g.add(f"cfg_{name}.negative_prompt_embeds", neg_embeds)
        g.add(f"cfg_{name}.pooled_embeds", pooled)
        g.add(f"cfg_{name}.negative_pooled_embeds", neg_pooled)
    g.write(out_path)


def make_unet(out_path, model, pipe):
    unet = pipe.unet
    f = pipe.vae_scale_factor
    dim = unet.config.cross_attention_dim
    pooled_dim = pipe.text_encoder_2.config.projection_dim
    channels = unet.config.in_channels
    cases = [  # name, batch, h, w, timestep, time ids per row
        ("b1_8x8", 1, 8, 8, 999.0, [[8 * f, 8 * f, 0, 0, 8 * f, 8 * f]]),
        ("b2_8x12", 2, 8, 12, 499.0, [[8 * f, 12 * f, 0, 0, 8 * f, 12 * f],
                                      [16 * f, 24 * f, 2 * f, f, 8 * f, 12 * f]]),
        ("b2_8x8", 2, 8, 8, 249.0, [[8 * f, 8 * f, 0, 0, 8 * f, 8 * f]] * 2),
    ]
    g = GoldenFile(model)
    for seed, (name, batch, h, w, t, time_ids) in enumerate(cases, start=100):
        gen = generator(seed)
        latents = torch.randn([batch, channels, h, w], generator=gen)
        embeds = torch.randn([batch, 77, dim], generator=gen)
        text_embeds = torch.randn([batch, pooled_dim], generator=gen)
        time_ids = torch.tensor(time_ids, dtype=torch.float32)
        timestep = torch.tensor(t, dtype=torch.float32)
        out = unet(latents, timestep, encoder_hidden_states=embeds,
                   added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
        g.add(f"{name}.latents", latents)
        g.add(f"{name}.timestep", timestep)
        g.add(f"{name}.prompt_embeds", embeds)
        g.add(f"{name}.text_embeds", text_embeds)
        g.add(f"{name}.time_ids", time_ids)
        g.add(f"{name}.out", out)
    g.write(out_path)


def make_vae(out_path, model, pipe):
    vae = pipe.vae
    g = GoldenFile(model)
    for height, width in [(64, 64), (64, 96)]:
        name = f"enc_{height}x{width}"
        pixels = make_picture(height, width)
        image = pipe.image_processor.preprocess(PIL.Image.fromarray(pixels))
        assert list(image.shape) == [1, 3, height, width] and image.dtype == torch.float32
        dist = vae.encode(image).latent_dist
        g.add(f"{name}.pixels", torch.from_numpy(pixels), torch.uint8)
        g.add(f"{name}.image", image)
        g.add(f"{name}.mean", dist.mean)
        g.add(f"{name}.logvar", dist.logvar)
    for seed, (h, w) in enumerate([(8, 8), (8, 12)], start=200):
        name = f"dec_{h}x{w}"
        latents = torch.randn([1, vae.config.latent_channels, h, w], generator=generator(seed))
        latents = latents / vae.config.scaling_factor
        g.add(f"{name}.latents", latents)
        g.add(f"{name}.out", vae.decode(latents).sample)
    g.write(out_path)
