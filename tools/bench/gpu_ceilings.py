"""gpu_ceilings.py — what the GPU can do at best, measured through torch, for the floors of
tools/bench/run_gpu.sh: the bf16 matrix-product rate and the device-to-device copy bandwidth.

    python3 tools/bench/gpu_ceilings.py        # one JSON object on stdout

bf16: an 8192×8192 by 8192×8192 product on random data, the median of 10 timed products after 3
untimed ones (2·8192³ FLOPs each). Copy: a 1 GiB buffer copied into another, the median of 10
after 3, counting the bytes read and written. Each timed with CUDA events around the one
operation. Without a GPU (or a torch that sees none) every figure is null, so a CPU dry run of
run_gpu.sh goes through.
"""

import json
import statistics

import torch

N = 8192
COPY_BYTES = 1 << 30
WARMUP, TIMED = 3, 10


def median_ms(fn):
    """Median milliseconds of fn() over TIMED calls after WARMUP, each between CUDA events."""
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(TIMED):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def matmul_tflops():
    gen = torch.Generator("cuda").manual_seed(0)
    a = torch.randn(N, N, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(N, N, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.empty(N, N, device="cuda", dtype=torch.bfloat16)
    return 2 * N**3 / (median_ms(lambda: torch.matmul(a, b, out=c)) * 1e-3) / 1e12


def copy_gbps():
    src = torch.empty(COPY_BYTES, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    return 2 * COPY_BYTES / (median_ms(lambda: dst.copy_(src)) * 1e-3) / 1e9


def measure():
    if not torch.cuda.is_available():
        return {"device": None, "torch": torch.__version__, "bf16_matmul_tflops": None,
                "d2d_copy_gbps": None}
    return {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "bf16_matmul_tflops": matmul_tflops(), "d2d_copy_gbps": copy_gbps()}


if __name__ == "__main__":
    print(json.dumps(measure()))
