"""bench_diffusers.py — diffusers' StableDiffusionXLImg2ImgPipeline timed per stage on a model
directory, the reference half of tools/bench/run.sh (a benchmark, not a test).

    /tmp/refvenv/bin/python tools/bench/bench_diffusers.py --model DIR --image IN.png
        [--runs 3] [--threads 2] [--steps 2] [--strength 0.8] [--guidance 0] [--seed 0]
        [--prompt TEXT] [--out LAST.png] [--warmup 1]
    /tmp/refvenv/bin/python tools/bench/bench_diffusers.py --write-picture IN.png --width W --height H

torch on the CPU in float32 with --threads intra-op threads, the model's fp16 files widened to
float32 at load (variant "fp16" when present), no watermarker. --warmup untimed generations, then
--runs timed generations with prompt "<prompt> <run number>" (the words bench_engine uses). Stage times
come from wrappers around what the pipeline calls: encode_prompt (both text encoders), vae.encode,
every unet forward (forward hooks), vae.decode; then the PNG encoding by Pillow (zlib level 6,
as sdxld's). End to end = the pipeline call + PNG encoding, from decoded pixels to PNG bytes. Also the
process's CPU time (all threads) over the end to end, the text stage, VAE encode + UNet (one
figure, as bench_engine can only give) and VAE decode.
Prints one JSON object on stdout with the same keys as build/bench_engine.

--write-picture writes the deterministic test picture of tools/reference (gradients, a disc,
stripes) that both halves of the benchmark start from.
"""

import argparse
import io
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))

import PIL.Image  # noqa: E402
import torch  # noqa: E402

from goldenlib import refuse_forbidden_packages  # noqa: E402
from golden_models import make_picture  # noqa: E402


def now_ms():
    return time.perf_counter() * 1e3


def cpu_ms():
    """CPU time of the whole process (every thread): on a shared machine wall time measures
    the other jobs too."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return (u.ru_utime + u.ru_stime) * 1e3


def peak_rss_bytes():
    """VmHWM of this process (0 where there is no /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class StageTimer:
    """Milliseconds per stage of the pipeline call in progress, through wrappers and hooks."""

    def __init__(self, pipe):
        self.ms = {}
        self.unet_calls = 0
        pipe.encode_prompt = self.wrap("text", pipe.encode_prompt)
        pipe.vae.encode = self.wrap("vae_encode", pipe.vae.encode)
        pipe.vae.decode = self.wrap("vae_decode", pipe.vae.decode)
        pipe.unet.register_forward_pre_hook(self.unet_start)
        pipe.unet.register_forward_hook(self.unet_end)
        self.unet_t0 = None

    def reset(self):
        self.ms = {f"{stage}{kind}": 0.0 for stage in ("text", "vae_encode", "unet", "vae_decode")
                   for kind in ("_ms", "_cpu_ms")}
        self.unet_calls = 0

    def wrap(self, stage, fn):
        def timed(*args, **kwargs):
            c0, t0 = cpu_ms(), now_ms()
            out = fn(*args, **kwargs)
            self.ms[f"{stage}_ms"] += now_ms() - t0
            self.ms[f"{stage}_cpu_ms"] += cpu_ms() - c0
            return out
        return timed

    def unet_start(self, module, args):
        self.unet_t0 = (now_ms(), cpu_ms())

    def unet_end(self, module, args, output):
        self.ms["unet_ms"] += now_ms() - self.unet_t0[0]
        self.ms["unet_cpu_ms"] += cpu_ms() - self.unet_t0[1]
        self.unet_calls += 1


def load_pipeline(model_dir):
    from diffusers import StableDiffusionXLImg2ImgPipeline
    fp16 = os.path.exists(os.path.join(model_dir, "unet", "diffusion_pytorch_model.fp16.safetensors"))
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
        model_dir, torch_dtype=torch.float32, variant="fp16" if fp16 else None, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_once(pipe, timer, a, picture, run, out_path=None):
    timer.reset()
    c0, t0 = cpu_ms(), now_ms()
    image = pipe(prompt=f"{a.prompt} {run}", image=picture, strength=a.strength,
                 num_inference_steps=a.steps, guidance_scale=a.guidance,
                 generator=torch.Generator("cpu").manual_seed(a.seed), output_type="pil").images[0]
    t1 = now_ms()
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    t2, c2 = now_ms(), cpu_ms()
    if out_path:
        with open(out_path, "wb") as f:
            f.write(buf.getvalue())
    ms = timer.ms
    ms["encode_unet_cpu_ms"] = ms.pop("vae_encode_cpu_ms") + ms.pop("unet_cpu_ms")
    return dict(ms, unet_steps=timer.unet_calls, png_ms=t2 - t1, generate_ms=t1 - t0,
                end_to_end_ms=t2 - t0, cpu_ms=c2 - c0), image.size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--image")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--strength", type=float, default=0.8)
    ap.add_argument("--guidance", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt", default="a photo of a cat")
    ap.add_argument("--out")
    ap.add_argument("--write-picture")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    a = ap.parse_args()

    if a.write_picture:
        PIL.Image.fromarray(make_picture(a.height, a.width)).save(a.write_picture, format="PNG")
        return
    if not a.model or not a.image or a.runs < 1:
        ap.error("--model and --image are required (and --runs >= 1)")
    refuse_forbidden_packages()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.set_grad_enabled(False)
    import diffusers
    import transformers
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()

    picture = PIL.Image.open(a.image).convert("RGB")
    t0 = now_ms()
    pipe = load_pipeline(a.model)
    load_ms = now_ms() - t0
    rss_loaded = peak_rss_bytes()
    print(f"bench_diffusers: loaded {a.model} in {load_ms / 1e3:.1f} s, peak RSS {rss_loaded / 1e9:.2f} GB",
          file=sys.stderr)
    timer = StageTimer(pipe)
    for w in range(a.warmup):
        warm = run_once(pipe, timer, a, picture, -w)[0]
        print(f"bench_diffusers: warm-up {warm['end_to_end_ms'] / 1e3:.1f} s", file=sys.stderr)
    runs = []
    for r in range(1, a.runs + 1):
        run, size = run_once(pipe, timer, a, picture, r, a.out if r == a.runs else None)
        runs.append(run)
        print(f"bench_diffusers: run {r}: {runs[-1]['end_to_end_ms'] / 1e3:.1f} s", file=sys.stderr)
    weight_bytes = sum(p.numel() * p.element_size()
                       for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2)
                       for p in m.parameters())
    print(json.dumps({
        "engine": "diffusers", "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                             "transformers": transformers.__version__},
        "backend": "torch cpu", "device": torch.backends.cpu.get_cpu_capability(), "threads": a.threads,
        "warmup": a.warmup, "width": size[0], "height": size[1], "steps": a.steps, "strength": a.strength,
        "guidance": a.guidance, "weight_bytes": weight_bytes, "load_ms": load_ms,
        "peak_rss_after_load_bytes": rss_loaded, "peak_rss_bytes": peak_rss_bytes(), "runs": runs}))


if __name__ == "__main__":
    main()
