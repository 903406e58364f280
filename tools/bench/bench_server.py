"""bench_server.py — drives a running sdxld with 1, 4 and 16 concurrent clients and reports
latency percentiles, throughput and the server's peak resident memory (tools/bench/run.sh
--server; a benchmark, not a test).

    PYTHON tools/bench/bench_server.py --image IN.png [--target 127.0.0.1:50051]
        [--clients 1,4,16] [--requests-per-client 2] [--seconds 600] [--pid PID]

PYTHON needs the dependencies of clients/python's sdxl_client package, pinned in
tools/bench/requirements-server.txt; the clients are that package's Client. Loopback only: the target must be 127.0.0.1, ::1, localhost
or a unix: socket. For each client count C (one gRPC channel per client, each sending Img2Img
one request after another): C × --requests-per-client requests at most, and no new request
after --seconds; each request has its own prompt (so a prompt cache never answers it) and the
PRD's defaults (steps 2, strength 0.8, guidance 0), seed 0, PNG out. One untimed request warms
the server first. Latency is the client's, from sending to the answer; throughput is images
answered per second of the level's wall time; the server's own metadata gives its queue wait
and inference time. Peak resident memory is VmHWM of the server process (--pid, else the one
process named sdxld) read from /proc after each level.
"""

import argparse
import math
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python",
                                "src"))

from sdxl_client import Client, SdxlError  # noqa: E402

LOOPBACK = ("127.0.0.1:", "[::1]:", "localhost:", "unix:")


def percentile(xs, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def find_server_pid():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm", encoding="ascii") as f:
                    if f.read().strip() == "sdxld":
                        pids.append(int(d))
            except OSError:
                continue
    return pids[0] if len(pids) == 1 else None


def peak_rss_bytes(pid):
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Level:
    """One client count: its requests' outcomes, gathered from the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency_ms, self.queue_wait_ms, self.inference_ms = [], [], []
        self.errors = {}
        self.sent = 0


def client(target, image, level, first, count, deadline_s, stop_at):
    with Client(target, timeout=deadline_s) as c:
        for i in range(first, first + count):
            if time.monotonic() >= stop_at:
                return
            t0 = time.monotonic()
            try:
                result = c.img2img(image, f"a photo of a cat {i}", seed=0)
                ms = (time.monotonic() - t0) * 1e3
                with level.lock:
                    level.sent += 1
                    level.latency_ms.append(ms)
                    level.queue_wait_ms.append(result.timings["queue_wait_ms"])
                    level.inference_ms.append(result.timings["inference_ms"])
            except SdxlError as e:
                key = f"{e.code.name} {e.reason}".strip()
                with level.lock:
                    level.sent += 1
                    level.errors[key] = level.errors.get(key, 0) + 1


def run_level(a, image, clients, next_id):
    level = Level()
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(a.target, image, level, next_id + c * a.requests_per_client,
                                                     a.requests_per_client, a.deadline, start + a.seconds))
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return level, time.monotonic() - start


def fmt(ms):
    return f"{ms / 1e3:,.2f} s" if ms >= 1000 else f"{ms:,.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", required=True, help="input picture (PNG, JPEG or WEBP)")
    ap.add_argument("--target", default="127.0.0.1:50051")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=600, help="no new request after this long, per level")
    ap.add_argument("--deadline", type=float, default=3600, help="gRPC deadline of each request, seconds")
    ap.add_argument("--pid", type=int, help="the server's process id (default: the process named sdxld)")
    a = ap.parse_args()
    if not a.target.startswith(LOOPBACK):
        ap.error(f"--target {a.target}: loopback only (127.0.0.1, [::1], localhost or unix:)")
    counts = [int(c) for c in a.clients.split(",")]
    if a.requests_per_client < 1 or any(c < 1 for c in counts):
        ap.error("--clients and --requests-per-client must be >= 1")
    with open(a.image, "rb") as f:
        image = f.read()
    pid = a.pid if a.pid else find_server_pid()

    with Client(a.target) as c:
        status = c.status(timeout=30)
        print(f"bench_server: {a.target}: model {status.model.name} on {status.model.backend} "
              f"({status.model.device}), pid {pid}", file=sys.stderr)
        t0 = time.monotonic()
        c.img2img(image, "warm-up", seed=0, timeout=a.deadline)
        print(f"bench_server: warm-up {time.monotonic() - t0:.1f} s", file=sys.stderr)

    rows, next_id = [], 1
    for c in counts:
        level, wall = run_level(a, image, c, next_id)
        next_id += c * a.requests_per_client
        ok = len(level.latency_ms)
        rss = peak_rss_bytes(pid)
        rss_cell = f"{rss / 1e9:.2f} GB" if rss else "n/a"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(level.errors.items())) or "none"
        if ok:
            lat = level.latency_ms
            rows.append(f"| {c} | {ok} / {level.sent} | {errors} | {fmt(percentile(lat, 50))} | "
                        f"{fmt(percentile(lat, 95))} | {fmt(percentile(lat, 99))} | {ok / wall:.3f} | "
                        f"{fmt(statistics.median(level.queue_wait_ms))} | "
                        f"{fmt(statistics.median(level.inference_ms))} | "
                        f"{rss_cell} |")
        else:
            rows.append(f"| {c} | 0 / {level.sent} | {errors} | – | – | – | 0 | – | – | {rss_cell} |")
        print(f"bench_server: {c} clients: {ok} answered in {wall:.1f} s", file=sys.stderr)

    print(f"Server {a.target}: model {status.model.name}, backend {status.model.backend} ({status.model.device}); "
          f"img2img of a {len(image)}-byte input, PRD defaults, one channel per client, up to "
          f"{a.requests_per_client} requests per client and {a.seconds:.0f} s per level; nearest-rank percentiles.")
    print()
    print("| clients | answered / sent | errors | p50 | p95 | p99 | images/s | median queue wait | "
          "median inference | server peak RSS |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
