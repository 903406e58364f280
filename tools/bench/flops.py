"""flops.py — the arithmetic of one img2img generation, per stage, counted by torch's
FlopCounterMode on diffusers' and transformers' own modules built on the "meta" device from a
model directory's configs (shapes only: no weights read, no memory, two seconds for sdxl-turbo).

    /tmp/refvenv/bin/python tools/bench/flops.py --model DIR [--width 512 --height 512]
        [--steps 2 --strength 0.8 --guidance 0]

A multiply-add counts 2 (matrix products, convolutions, attention products; norms and
element-wise work are not counted, as in FlopCounterMode and src/engine/unet_flops.h, whose
count it equals: 1,588,778,762,240 for the sdxl-turbo UNet at 512x512). Both text encoders are
counted whole, as diffusers runs them. Classifier-free guidance (guidance > 1) doubles the UNet
batch; the negative prompt is not given, so the text encoders run once.
"""

import argparse
import json

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

TEXT_TOKENS = 77


def count(fn):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def stage_flops(model_dir, width, height, steps=2, strength=0.8, guidance=0.0):
    """{stage: FLOPs} for one img2img generation, plus unet_evaluations and total."""
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(f"{model_dir}/unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(f"{model_dir}/vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_pretrained(f"{model_dir}/text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(f"{model_dir}/text_encoder_2"))
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        batch = 2 if guidance > 1 else 1
        ids = torch.zeros(1, TEXT_TOKENS, dtype=torch.long)
        pixels = torch.zeros(1, 3, height, width)
        latents = torch.zeros(batch, unet.config.in_channels, height // scale, width // scale)
        text = torch.zeros(batch, TEXT_TOKENS, unet.config.cross_attention_dim)
        added = {"text_embeds": torch.zeros(batch, te2.config.projection_dim),
                 "time_ids": torch.zeros(batch, 6)}
        f = {
            "text": count(lambda: te1(ids, output_hidden_states=True))
                    + count(lambda: te2(ids, output_hidden_states=True)),
            "vae_encode": count(lambda: vae.encode(pixels)),
            "unet_evaluation": count(lambda: unet(latents, torch.tensor(999.0), encoder_hidden_states=text,
                                                  added_cond_kwargs=added)),
            "vae_decode": count(lambda: vae.decode(latents[:1])),
        }
    f["unet_evaluations"] = int(steps * strength)
    f["unet"] = f["unet_evaluation"] * f["unet_evaluations"]
    f["total"] = f["text"] + f["vae_encode"] + f["unet"] + f["vae_decode"]
    return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--strength", type=float, default=0.8)
    ap.add_argument("--guidance", type=float, default=0.0)
    a = ap.parse_args()
    print(json.dumps(stage_flops(a.model, a.width, a.height, a.steps, a.strength, a.guidance)))


if __name__ == "__main__":
    main()
