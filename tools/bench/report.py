"""report.py — the Markdown tables of tools/bench/run.sh: sdxld's engine beside diffusers, per
stage, against the FLOP count and the machine's measured sgemm rate (the floor).

    /tmp/refvenv/bin/python tools/bench/report.py --dir RESULTS_DIR
    python3 tools/bench/report.py --gpu --dir RESULTS_DIR     # what run_gpu.sh wrote

RESULTS_DIR holds what run.sh wrote: flops.json (flops.py), bench_ops.txt (build/bench_ops),
sdxld.json (build/bench_engine), diffusers.json (bench_diffusers.py), and sdxld.png /
diffusers.png (each side's last image: same weights, prompt and seed, so their pixels are
compared too). A missing side is reported as not run. Medians over the timed runs, spread as
min-max. The floor of a stage is its FLOPs divided by the best raw cblas_sgemm rate bench_ops
measured on SDXL's linear and convolution products in the same run; the CPU-time floor divides
by the best one-thread rate (bench_ops_1.txt), and load.txt gives the load averages around
each side.

--gpu: the table of tools/bench/run_gpu.sh instead, from ceilings.json (gpu_ceilings.py),
flops_<size>.json, and per case sdxld_<size>_b<batch>[_<variant>].json and
diffusers_<size>_b<batch>.json (<size> square). The floor of a case is its FLOPs (the text
encoders, unless the prompt cache answers, and the VAE encode once: one input picture; the
UNet and the VAE decode once per image) divided by the measured bf16 matrix-product rate.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess

STAGES = [("text encoders", "text_ms", "text"), ("VAE encode", "vae_encode_ms", "vae_encode"),
          ("UNet", "unet_ms", "unet"), ("VAE decode", "vae_decode_ms", "vae_decode"),
          ("PNG encoding", "png_ms", None), ("end to end", "end_to_end_ms", "total")]
# CPU time of the whole process (all threads) per stage: robust to other jobs on the machine,
# where wall time is not. VAE encode and UNet are one figure (no engine event separates them).
CPU_STAGES = [("text encoders", "text_cpu_ms", ("text",)),
              ("VAE encode + UNet", "encode_unet_cpu_ms", ("vae_encode", "unet")),
              ("VAE decode", "vae_decode_cpu_ms", ("vae_decode",)),
              ("end to end", "cpu_ms", ("total",))]


def load_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def best_rate(path):
    """(op, shape, GFLOP/s) of the fastest raw sgemm in a bench_ops table, or None."""
    rates = sgemm_rates(path)
    return max(rates, key=lambda r: r[2]) if rates else None


def sgemm_rates(path):
    """[(op, shape, sgemm GFLOP/s)] of bench_ops' table rows for linear and conv2d."""
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 7 and cells[0] in ("linear", "conv2d 3x3"):
                    rows.append((cells[0], cells[1], float(cells[5])))
    return rows


def machine():
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        cpuinfo = f.read()
    with open("/proc/meminfo", encoding="ascii") as f:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    cpu = m.group(1) if m else platform.machine()
    isa = "AVX-512" if " avx512f" in cpuinfo else "AVX2" if " avx2" in cpuinfo else "no AVX2"
    return f"{cpu}, {os.cpu_count()} cores ({isa}), {mem_kb / 2**20:.0f} GiB RAM, load average " \
           f"{os.getloadavg()[0]:.1f} at the end"


def tree():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stats(side, key):
    """(median, min, max) of a key over a side's runs, or None."""
    if not side:
        return None
    xs = [r[key] for r in side["runs"] if key in r]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def fmt_ms(s):
    if s is None:
        return "not run"
    med, lo, hi = s
    unit, k = ("s", 1e-3) if med >= 1000 else ("ms", 1)
    return f"{med * k:,.2f} {unit} ({lo * k:,.2f}–{hi * k:,.2f})"


def gflop(flops):
    if not flops:
        return "–"
    return f"{flops / 1e9:,.1f}" if flops >= 1e10 else f"{flops / 1e9:.3g}"


def rate(flops, s):
    return f"{flops / (s[0] * 1e-3) / 1e9:,.1f}" if flops and s and s[0] > 0 else "–"


def pixel_diff(a, b):
    if not (os.path.exists(a) and os.path.exists(b)):
        return None
    import numpy as np
    import PIL.Image
    x = np.asarray(PIL.Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(PIL.Image.open(b).convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return f"different sizes {x.shape} and {y.shape}"
    d = np.abs(x - y)
    return f"max \\|sdxld − diffusers\\| = {int(d.max())} of 255, {100.0 * (d <= 2).mean():.3f} % within ±2"


def report(results):
    flops = load_json(os.path.join(results, "flops.json")) or {}
    ours = load_json(os.path.join(results, "sdxld.json"))
    ref = load_json(os.path.join(results, "diffusers.json"))
    rates = sgemm_rates(os.path.join(results, "bench_ops.txt"))
    best = best_rate(os.path.join(results, "bench_ops.txt"))
    sgemm = best[2] if best else None
    core = best_rate(os.path.join(results, "bench_ops_1.txt"))
    any_side = ours or ref
    out = []
    out.append(f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. Tree: {tree()}.")
    if any_side:
        out.append(f"Workload: img2img {any_side['width']}×{any_side['height']}, steps {any_side['steps']}, "
                   f"strength {any_side['strength']}, guidance {any_side['guidance']} "
                   f"({flops.get('unet_evaluations', '?')} UNet evaluation), batch 1; "
                   f"{len(any_side['runs'])} timed runs after {any_side.get('warmup', 1)} untimed; "
                   f"median (min–max).")
    if ref:
        v = ref["versions"]
        out.append(f"diffusers {v['diffusers']}, transformers {v['transformers']}, torch {v['torch']} "
                   f"(CPU, {ref['device']}), float32, {ref['threads']} threads. "
                   f"sdxld: cpu backend, fp32, {ours['threads'] if ours else '?'} threads.")
    if sgemm:
        out.append(f"Measured sgemm: {sgemm:.1f} GFLOP/s (best raw cblas_sgemm of build/bench_ops, "
                   f"{best[0]} {best[1]}; all: {', '.join(f'{r[2]:.0f}' for r in rates)}). "
                   f"Floor = FLOPs ÷ that rate.")
    if core:
        out.append(f"One core: {core[2]:.1f} GFLOP/s ({core[0]} {core[1]}, bench_ops --threads 1); "
                   f"the CPU-time floor is FLOPs ÷ that rate.")
    load_path = os.path.join(results, "load.txt")
    if os.path.exists(load_path):
        with open(load_path, encoding="utf-8") as f:
            loads = "; ".join(" ".join(line.split()[:3]) for line in f if line.strip())
        out.append(f"Load averages (1, 5, 15 min) around each side: {loads}. Wall times include "
                   f"what other jobs took of the cores; CPU times below do not.")
    out.append("")
    out.append("| stage | GFLOP | floor | sdxld | GFLOP/s | × floor | diffusers | GFLOP/s | sdxld speed-up |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, key, fkey in STAGES:
        f = flops.get(fkey) if fkey else None
        a, b = stats(ours, key), stats(ref, key)
        floor_ms = f / (sgemm * 1e9) * 1e3 if f and sgemm else None
        out.append(" | ".join([
            f"| {name}", gflop(f),
            fmt_ms((floor_ms, floor_ms, floor_ms)).split(" (")[0] if floor_ms else "–",
            fmt_ms(a), rate(f, a), f"{a[0] / floor_ms:.2f}" if a and floor_ms else "–",
            fmt_ms(b), rate(f, b), f"{b[0] / a[0]:.2f}×" if a and b and a[0] > 0 else "–"]) + " |")
    out.append("")
    out.append("| CPU time (process, all threads) | GFLOP | floor, one core | sdxld | × floor | diffusers "
               "| × floor | sdxld saves |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, key, fkeys in CPU_STAGES:
        f = sum(flops.get(k, 0) for k in fkeys) or None
        floor_ms = f / (core[2] * 1e9) * 1e3 if f and core else None
        a, b = stats(ours, key), stats(ref, key)
        out.append(" | ".join([
            f"| {name}", gflop(f), fmt_ms((floor_ms,) * 3).split(" (")[0] if floor_ms else "–",
            fmt_ms(a), f"{a[0] / floor_ms:.2f}" if a and floor_ms else "–",
            fmt_ms(b), f"{b[0] / floor_ms:.2f}" if b and floor_ms else "–",
            f"{100 * (1 - a[0] / b[0]):.0f} %" if a and b and b[0] > 0 else "–"]) + " |")
    out.append("")
    out.append("| memory and load | sdxld | diffusers |")
    out.append("| --- | ---: | ---: |")
    for label, key, scale, unit in [("weights held", "weight_bytes", 1e-9, "GB"),
                                    ("load time", "load_ms", 1e-3, "s"),
                                    ("peak resident (VmHWM) after load", "peak_rss_after_load_bytes", 1e-9, "GB"),
                                    ("peak resident (VmHWM) at the end", "peak_rss_bytes", 1e-9, "GB")]:
        cells = [f"{s[key] * scale:,.2f} {unit}" if s else "not run" for s in (ours, ref)]
        out.append(f"| {label} | {cells[0]} | {cells[1]} |")
    diff = pixel_diff(os.path.join(results, "sdxld.png"), os.path.join(results, "diffusers.png"))
    if diff:
        out.append("")
        out.append(f"Output of the last run, same weights, prompt and seed: {diff}.")
    return "\n".join(out)


GPU_STAGES = ("generate", "text", "vae_encode", "unet", "vae_decode")
GPU_VARIANTS = {"": "", "same": ", same prompt (cache hit)", "fp32": ", fp32 (check path)"}
GPU_CASE = re.compile(r"sdxld_(\d+)_b(\d+)(?:_(\w+))?\.json$")


def ms(x):
    return "–" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def stage_ms(side):
    """"generate (text / encode / UNet / decode)" from a side's medians, or "not run"."""
    if not side:
        return "not run"
    m = [ms(side.get(f"median_{s}_ms")) for s in GPU_STAGES]
    return f"{m[0]} ({' / '.join(m[1:])})"


def case_floor_ms(flops, batch, text, tflops):
    if not flops or not tflops:
        return None
    work = (flops["text"] if text else 0) + flops["vae_encode"] + batch * (flops["unet"] + flops["vae_decode"])
    return work / (tflops * 1e12) * 1e3


def gpu_report(results):
    ceilings = load_json(os.path.join(results, "ceilings.json")) or {}
    tflops, gbps = ceilings.get("bf16_matmul_tflops"), ceilings.get("d2d_copy_gbps")
    cases = []
    for path in glob.glob(os.path.join(results, "sdxld_*.json")):
        m = GPU_CASE.search(os.path.basename(path))
        if m and (m.group(3) or "") in GPU_VARIANTS:
            cases.append((int(m.group(1)), list(GPU_VARIANTS).index(m.group(3) or ""), int(m.group(2)),
                          m.group(3) or ""))
    out = [f"Date: {datetime.date.today().isoformat()}. Tree: {tree()}."]
    if ceilings.get("device"):
        out.append(f"Device: {ceilings['device']} (torch {ceilings['torch']}): bf16 matrix product "
                   f"{tflops:,.0f} TFLOP/s (8192³, median of 10), device-to-device copy {gbps:,.0f} GB/s "
                   f"(read + written). Floor = FLOPs ÷ that bf16 rate.")
    else:
        out.append("No GPU seen by torch: no measured rate, no floor.")
    any_ref = next((r for r in (load_json(p) for p in sorted(glob.glob(os.path.join(results, "diffusers_*.json"))))
                    if r), None)
    any_ours = next((r for r in (load_json(os.path.join(results, f"sdxld_{s}_b{b}.json")) for s, _, b, _ in cases)
                     if r), None)
    if any_ours:
        out.append(f"sdxld: {any_ours['backend']} backend on {any_ours['device']}, dtype {any_ours['dtype']}, "
                   f"VAE {any_ours['vae_dtype']} unless the case says otherwise (auto: the engine's default, "
                   f"on cuda fp16 and a bf16 VAE); "
                   f"weights {any_ours['weight_bytes'] / 1e9:.2f} GB, loaded in {any_ours['load_ms'] / 1e3:.1f} s.")
    if any_ref:
        v = any_ref["versions"]
        out.append(f"diffusers {v['diffusers']} eager, transformers {v['transformers']}, torch {v['torch']} "
                   f"({any_ref['backend']}), {any_ref['dtype']} with the VAE in {any_ref['vae_dtype']} "
                   f"(force_upcast); weights {any_ref['weight_bytes'] / 1e9:.2f} GB.")
    if any_ours or any_ref:
        side = any_ours or any_ref
        out.append(f"Workload: img2img, steps {side['steps']}, strength {side['strength']}, guidance "
                   f"{side['guidance']}. Medians over the timed runs, ms: generate (text / VAE encode / UNet / "
                   f"VAE decode), without PNG encoding.")
    out.append("")
    out.append("| case | sdxld ms | diffusers ms | speed-up | sdxld images/s | floor ms | sdxld ÷ floor |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, _, batch, variant in sorted(cases):
        ours = load_json(os.path.join(results, f"sdxld_{size}_b{batch}{'_' + variant if variant else ''}.json"))
        ref = load_json(os.path.join(results, f"diffusers_{size}_b{batch}.json")) if not variant else None
        floor = case_floor_ms(load_json(os.path.join(results, f"flops_{size}.json")), batch, variant != "same",
                              tflops)
        gen = ours["median_generate_ms"] if ours else None
        out.append(" | ".join([
            f"| {size}² b{batch}{GPU_VARIANTS[variant]}", stage_ms(ours), stage_ms(ref) if not variant else "",
            f"{ref['median_generate_ms'] / gen:.2f}×" if ref and gen else "–",
            f"{batch * 1e3 / gen:,.1f}" if gen else "–", ms(floor),
            f"{gen / floor:.2f}" if gen and floor else "–"]) + " |")
    for size, _, batch, variant in sorted(cases):
        if batch == 1 and not variant:
            diff = pixel_diff(os.path.join(results, f"sdxld_{size}_b1.png"),
                              os.path.join(results, f"diffusers_{size}_b1.png"))
            if diff:
                out.append("")
                out.append(f"{size}² b1, last image, same weights, prompt and seed (sdxld {any_ours['dtype']}, "
                           f"diffusers fp16): {diff}.")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--gpu", action="store_true", help="the table of run_gpu.sh")
    a = ap.parse_args()
    print(gpu_report(a.dir) if a.gpu else report(a.dir))


if __name__ == "__main__":
    main()
