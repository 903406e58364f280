"""golden_pipeline.py — pipeline_<model>.safetensors: diffusers' SDXL img2img and txt2img end to
end, with what happens in between (image latents, noise, latents after every step) recorded so a
mismatch in the C pipeline can be located, not only detected.

Intermediate values are captured by wrapping the scheduler's add_noise and the pipeline's
prepare_latents (both return the tensors unchanged) and through callback_on_step_end.
"""

import numpy as np
import PIL.Image
import torch

from golden_models import load_img2img, load_txt2img, make_picture
from goldenlib import GoldenFile, generator

PROMPT = "a photo of a cat"

# name, kind, (H, W), steps, strength, guidance, seeds, prompt, negative prompt
CASES = [
    ("i2i_a", "img2img", (64, 64), 2, 0.8, 0.0, [0], PROMPT, None),
    ("i2i_b", "img2img", (64, 64), 4, 0.5, 0.0, [0], PROMPT, None),
    ("i2i_c", "img2img", (64, 64), 2, 1.0, 0.0, [0], PROMPT, None),
    ("i2i_d", "img2img", (64, 64), 2, 0.8, 0.0, [42], PROMPT, None),
    ("i2i_e", "img2img", (64, 96), 2, 0.8, 0.0, [2**63 - 1], PROMPT, None),
    ("i2i_cfg", "img2img", (64, 64), 2, 0.8, 5.0, [7], PROMPT, "blurry, low quality"),
    ("i2i_batch", "img2img", (64, 64), 2, 0.8, 0.0, [1000, 1001, 1002], "a red house by the sea", None),
    ("t2i_a", "txt2img", (64, 64), 1, None, 0.0, [0], PROMPT, None),
    ("t2i_b", "txt2img", (64, 64), 2, None, 0.0, [123456789], PROMPT, None),
    ("t2i_c", "txt2img", (64, 96), 2, None, 0.0, [5], "café 一只猫, watercolor", None),
]


class Recorder:
    """Wraps pipe.scheduler.add_noise and pipe.prepare_latents to keep their tensors."""

    def __init__(self, pipe):
        self.values = {}
        self.latents = []
        self.timesteps = []
        add_noise, prepare_latents = pipe.scheduler.add_noise, pipe.prepare_latents

        def recording_add_noise(original, noise, timesteps):
            out = add_noise(original, noise, timesteps)
            self.values.update(image_latents=original.clone(), noise=noise.clone())
            return out

        def recording_prepare_latents(*args, **kwargs):
            out = prepare_latents(*args, **kwargs)
            self.values["latents_init"] = out.clone()
            return out

        pipe.scheduler.add_noise = recording_add_noise
        pipe.prepare_latents = recording_prepare_latents
        self.pipe = pipe

    def restore(self):
        """Removes the wrappers (instance attributes over the class's methods)."""
        del self.pipe.scheduler.add_noise
        del self.pipe.prepare_latents

    def on_step_end(self, pipe, i, t, kwargs):
        assert i == len(self.latents)
        self.latents.append(kwargs["latents"].clone())
        self.timesteps.append(float(t))
        return kwargs


def run_case(img2img, txt2img, case):
    name, kind, (height, width), steps, strength, guidance, seeds, prompt, negative = case
    pipe = img2img if kind == "img2img" else txt2img
    rec = Recorder(pipe)
    gens = [generator(s) for s in seeds]
    args = dict(prompt=prompt, negative_prompt=negative, num_inference_steps=steps,
                guidance_scale=guidance, num_images_per_prompt=len(seeds),
                generator=gens if len(gens) > 1 else gens[0], output_type="pil",
                callback_on_step_end=rec.on_step_end)
    pixels_in = None
    if kind == "img2img":
        pixels_in = make_picture(height, width)
        args.update(image=PIL.Image.fromarray(pixels_in), strength=strength)
    else:
        args.update(height=height, width=width)
    try:
        images = pipe(**args).images
    finally:
        rec.restore()
    pixels = np.stack([np.asarray(im) for im in images])
    assert pixels.shape == (len(seeds), height, width, 3) and pixels.dtype == np.uint8
    return rec, pixels_in, pixels


def make(out_path, model, model_dir):
    img2img, txt2img = load_img2img(model_dir), load_txt2img(model_dir)
    g = GoldenFile(model)
    for case in CASES:
        name, kind, (height, width), steps, strength, guidance, seeds, prompt, negative = case
        rec, pixels_in, pixels = run_case(img2img, txt2img, case)
        g.meta(f"{name}.kind", kind)
        g.meta(f"{name}.prompt", prompt)
        if negative is not None:
            g.meta(f"{name}.negative_prompt", negative)
        g.add(f"{name}.steps", steps, torch.int64)
        g.add(f"{name}.guidance_scale", guidance, torch.float64)
        g.add_seed(f"{name}.seeds", seeds)
        g.add(f"{name}.size", [height, width], torch.int64)
        g.add(f"{name}.timesteps", rec.timesteps)
        g.add(f"{name}.latents_init", rec.values["latents_init"])
        for k, latents in enumerate(rec.latents):
            g.add(f"{name}.latents.step{k}", latents)
        g.add(f"{name}.pixels", torch.from_numpy(pixels), torch.uint8)
        if kind == "img2img":
            g.add(f"{name}.strength", strength, torch.float64)
            g.add(f"{name}.input_pixels", torch.from_numpy(pixels_in), torch.uint8)
            g.add(f"{name}.image_latents", rec.values["image_latents"])
            g.add(f"{name}.noise", rec.values["noise"])
    g.write(out_path)
