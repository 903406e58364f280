"""bench_diffusers.py — diffusers' StableDiffusionXLImg2ImgPipeline timed per stage on a model
directory, the reference half of tools/bench/run.sh (a benchmark, not a test).

    /tmp/refvenv/bin/python tools/bench/bench_diffusers.py --model DIR --image IN.png
        [--runs 3] [--threads 2] [--steps 2] [--strength 0.8] [--guidance 0] [--seed 0]
        [--prompt TEXT] [--out LAST.png] [--warmup 1] [--device cpu|cuda] [--dtype fp32|fp16]
        [--batch 1]
    /tmp/refvenv/bin/python tools/bench/bench_diffusers.py --write-picture IN.png --width W --height H

torch on --device (cpu by default, with --threads intra-op threads) in --dtype: the model's
files (variant "fp16" when present) are loaded as float32 (fp32, the default) or float16
(fp16). The VAE is left in the dtype loaded: with fp16, diffusers' SDXL pipelines upcast it to
float32 for the encode and the decode themselves (and back afterwards) because vae/config.json
says force_upcast: true, so "fp16" here is diffusers fp16 eager as users run it, which is what
sdxld is compared with. No watermarker. --warmup untimed generations, then --runs timed
generations of --batch images each (num_images_per_prompt) with prompt "<prompt> <run number>"
(the words bench_engine uses) and one generator, torch.Generator("cpu").manual_seed(seed), as
sdxld draws on the CPU too (with a batch, diffusers encodes the one input picture once and
draws every image's noise from that one generator). Stage times come from wrappers around what
the pipeline calls: encode_prompt (both text encoders), vae.encode, every unet forward (forward
hooks), vae.decode; then the PNG encoding of every image by Pillow (zlib level 6, as sdxld's).
On cuda every timed region starts and ends with torch.cuda.synchronize(), so a stage's time is
its kernels' and not whatever was queued before it. End to end = the pipeline call + PNG
encoding, from decoded pixels to PNG bytes. Also the process's CPU time (all threads) over the
end to end, the text stage, VAE encode + UNet (one figure, as bench_engine can only give) and
VAE decode. Prints one JSON object on stdout with the same keys as build/bench_engine,
medians over the timed runs included.

Works with the pinned reference venv (diffusers 0.31, transformers 4.46) and with the diffusers
of tools/bench/requirements-gpu.txt on a GPU machine's torch 2.11 and transformers 5.

--write-picture writes the deterministic test picture of tools/reference (gradients, a disc,
stripes) that both halves of the benchmark start from.
"""

import argparse
import io
import json
import os
import resource
import statistics
import sys
import time
import warnings

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


MEDIANS = ("generate_ms", "end_to_end_ms", "text_ms", "vae_encode_ms", "unet_ms", "vae_decode_ms")


def device_sync(device):
    """A function that waits for the device's queued work (a no-op on the CPU): on cuda a clock
    read only marks a stage's end once its kernels are done."""
    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


class StageTimer:
    """Milliseconds per stage of the pipeline call in progress, through wrappers and hooks."""

    def __init__(self, pipe, sync):
        self.sync = sync
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
            self.sync()
            c0, t0 = cpu_ms(), now_ms()
            out = fn(*args, **kwargs)
            self.sync()
            self.ms[f"{stage}_ms"] += now_ms() - t0
            self.ms[f"{stage}_cpu_ms"] += cpu_ms() - c0
            return out
        return timed

    def unet_start(self, module, args):
        self.sync()
        self.unet_t0 = (now_ms(), cpu_ms())

    def unet_end(self, module, args, output):
        self.sync()
        self.ms["unet_ms"] += now_ms() - self.unet_t0[0]
        self.ms["unet_cpu_ms"] += cpu_ms() - self.unet_t0[1]
        self.unet_calls += 1


def load_pipeline(model_dir, dtype, device):
    import diffusers
    from diffusers import StableDiffusionXLImg2ImgPipeline
    from packaging.version import Version
    fp16 = os.path.exists(os.path.join(model_dir, "unet", "diffusion_pytorch_model.fp16.safetensors"))
    # from_pretrained takes dtype in diffusers 0.40 and later (torch_dtype still works there,
    # with a FutureWarning), torch_dtype only in 0.31.
    dtype_arg = "dtype" if Version(diffusers.__version__) >= Version("0.40") else "torch_dtype"
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(
        model_dir, variant="fp16" if fp16 else None, add_watermarker=False,
        **{dtype_arg: torch.float16 if dtype == "fp16" else torch.float32})
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def run_once(pipe, timer, a, picture, run, out_path=None):
    timer.reset()
    timer.sync()
    c0, t0 = cpu_ms(), now_ms()
    images = pipe(prompt=f"{a.prompt} {run}", image=picture, strength=a.strength,
                  num_inference_steps=a.steps, guidance_scale=a.guidance, num_images_per_prompt=a.batch,
                  generator=torch.Generator("cpu").manual_seed(a.seed), output_type="pil").images
    timer.sync()
    t1 = now_ms()
    pngs = []
    for image in images:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        pngs.append(buf)
    t2, c2 = now_ms(), cpu_ms()
    if out_path:
        with open(out_path, "wb") as f:
            f.write(pngs[0].getvalue())
    ms = timer.ms
    ms["encode_unet_cpu_ms"] = ms.pop("vae_encode_cpu_ms") + ms.pop("unet_cpu_ms")
    return dict(ms, unet_steps=timer.unet_calls, png_ms=t2 - t1, generate_ms=t1 - t0,
                end_to_end_ms=t2 - t0, cpu_ms=c2 - c0), images[0].size


def medians(runs):
    """The median of each stage over the timed runs, and the fastest generation."""
    out = {f"median_{key}": statistics.median(r[key] for r in runs) for key in MEDIANS}
    out["min_generate_ms"] = min(r["generate_ms"] for r in runs)
    return out


def print_run(what, run):
    print(f"bench_diffusers: {what}: {run['end_to_end_ms']:.1f} ms (text {run['text_ms']:.1f}, encode "
          f"{run['vae_encode_ms']:.1f}, unet {run['unet_ms']:.1f}, decode {run['vae_decode_ms']:.1f}, "
          f"png {run['png_ms']:.1f})", file=sys.stderr)


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
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--write-picture")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    a = ap.parse_args()

    if a.write_picture:
        PIL.Image.fromarray(make_picture(a.height, a.width)).save(a.write_picture, format="PNG")
        return
    if not a.model or not a.image or a.runs < 1 or a.batch < 1:
        ap.error("--model and --image are required (and --runs >= 1, --batch >= 1)")
    if a.device == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device cuda: torch {torch.__version__} sees no GPU")
    refuse_forbidden_packages()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.set_grad_enabled(False)
    import diffusers
    import transformers
    # Recent diffusers warn on every process that its SDXL pipelines call their own deprecated
    # upcast_vae: noise in a benchmark's log.
    warnings.filterwarnings("ignore", category=FutureWarning)
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    picture = PIL.Image.open(a.image).convert("RGB")
    t0 = now_ms()
    pipe = load_pipeline(a.model, a.dtype, a.device)
    sync = device_sync(a.device)
    sync()
    load_ms = now_ms() - t0
    rss_loaded = peak_rss_bytes()
    print(f"bench_diffusers: loaded {a.model} in {load_ms / 1e3:.1f} s, peak RSS {rss_loaded / 1e9:.2f} GB",
          file=sys.stderr)
    timer = StageTimer(pipe, sync)
    for w in range(a.warmup):
        print_run("warm-up", run_once(pipe, timer, a, picture, -w)[0])
    runs = []
    for r in range(1, a.runs + 1):
        run, size = run_once(pipe, timer, a, picture, r, a.out if r == a.runs else None)
        runs.append(run)
        print_run(f"run {r}", run)
    weight_bytes = sum(p.numel() * p.element_size()
                       for m in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2)
                       for p in m.parameters())
    device = torch.cuda.get_device_name() if a.device == "cuda" else torch.backends.cpu.get_cpu_capability()
    # The VAE's dtype as it computes: force_upcast runs it in float32 whatever it was loaded in.
    vae_dtype = "fp32" if pipe.vae.config.force_upcast else a.dtype
    print(json.dumps({
        "engine": "diffusers", "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                             "transformers": transformers.__version__},
        "backend": f"torch {a.device}", "device": device, "threads": a.threads, "dtype": a.dtype,
        "vae_dtype": vae_dtype, "batch": a.batch, "same_prompt": False,
        "warmup": a.warmup, "width": size[0], "height": size[1], "steps": a.steps, "strength": a.strength,
        "guidance": a.guidance, "weight_bytes": weight_bytes, "load_ms": load_ms,
        "peak_rss_after_load_bytes": rss_loaded, "peak_rss_bytes": peak_rss_bytes(), **medians(runs),
        "runs": runs}))


if __name__ == "__main__":
    main()
