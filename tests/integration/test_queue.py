"""The queue under load: 32 concurrent clients with valid, invalid and cancelled requests;
FIFO order; queue-full; deadlines and cancellation, queued and running."""
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import SLOW, pixels, png_bytes
from sdxl_client import Client, SdxlError

INPUT = png_bytes(64, 64, seed=3)
SLOW_JOB = dict(width=256, height=256, num_inference_steps=30, strength=1.0)


def scrape(server) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics",
                                  timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def generation_answers(samples: dict) -> float:
    gen = {"Img2Img", "Img2ImgBatch", "Img2ImgStream", "Txt2Img"}
    return sum(v for (name, labels), v in samples.items()
               if name == "sdxl_requests_total" and dict(labels)["method"] in gen)


def wait_until(predicate, timeout=30.0):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_32_concurrent_clients_fifo_own_answers_engine_images(server, engine_output):
    prompts = ["a cat", "a dog", "a ship", "a tree"]
    refs = {(p, 100 + i): engine_output(INPUT, p, 100 + i) for i, p in enumerate(prompts)}
    before = generation_answers(scrape(server))
    kinds = ["valid", "valid", "invalid", "valid", "cancel", "valid", "invalid", "valid"] * 4
    results = [None] * len(kinds)
    start = threading.Barrier(len(kinds))

    def client(i: int):
        kind = kinds[i]
        with Client(server.target) as c:
            start.wait()
            if kind == "valid":
                prompt = prompts[i % 4]
                seed = 100 + i % 4
                r = c.img2img(INPUT, prompt, seed=seed, request_id=f"client-{i}")
                results[i] = (kind, prompt, seed, r)
            elif kind == "invalid":
                try:
                    c.img2img(b"broken" if i % 2 else INPUT, "x", num_inference_steps=1,
                              strength=0.5)
                except SdxlError as e:
                    results[i] = (kind, e)
            else:
                stream = c.stub.Img2ImgStream(c.img2img_request(INPUT, "x", seed=i))
                next(stream)  # queued
                stream.cancel()
                try:
                    list(stream)
                except grpc.RpcError as e:
                    results[i] = (kind, e.code())

    with ThreadPoolExecutor(len(kinds)) as pool:
        for f in [pool.submit(client, i) for i in range(len(kinds))]:
            f.result()

    valid = [r for r in results if r and r[0] == "valid"]
    assert len(valid) == kinds.count("valid")
    for i, r in enumerate(results):
        assert r is not None, f"client {i} ({kinds[i]}) got no answer"
    for kind, prompt, seed, r in valid:
        assert r.seeds == [seed] and r.images[0].seed == seed
        assert pixels(r.images[0].data) == refs[(prompt, seed)]
    assert sorted(int(r.request_id.split("-")[1]) for _, _, _, r in valid) == \
        [i for i, k in enumerate(kinds) if k == "valid"]
    # FIFO: the engine started the jobs in the order the queue accepted them.
    by_queue = sorted(valid, key=lambda v: v[3].queue_sequence)
    runs = [v[3].run_sequence for v in by_queue]
    assert runs == sorted(runs) and len(set(runs)) == len(runs)
    for r in results:
        if r[0] == "invalid":
            assert r[1].reason in ("INVALID_IMAGE", "INVALID_PARAMETER")
        elif r[0] == "cancel":
            assert r[1] == grpc.StatusCode.CANCELLED
    # Exactly one final answer per request: the server recorded every one of the 32 calls
    # (cancelled ones included, once the server noticed).
    wait_until(lambda: generation_answers(scrape(server)) - before == len(kinds))
    time.sleep(0.3)
    assert generation_answers(scrape(server)) - before == len(kinds)


def start_slow_job(c: Client):
    """Runs a ~2 s job in a thread; returns (thread, outcome list)."""
    outcome = []

    def run():
        try:
            outcome.append(c.img2img(INPUT, "slow", seed=1, **SLOW_JOB))
        except SdxlError as e:
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    return t, outcome


def test_queue_full_answers_at_once_and_cancelled_jobs_leave_the_queue(make_server):
    s = make_server("--queue-size", "2")
    c = s.client()
    c.img2img(INPUT, "measured", seed=1)  # one measured shape: the estimates scale from it
    t, slow = start_slow_job(c)
    wait_until(lambda: c.status().HasField("running"))
    waiting = [c.stub.Img2Img.future(c.img2img_request(INPUT, "q", seed=i)) for i in range(2)]
    wait_until(lambda: c.status().queue_length == 2)
    t0 = time.time()
    with pytest.raises(SdxlError) as e:
        c.img2img(INPUT, "one too many")
    assert time.time() - t0 < 1.0 * SLOW
    assert (e.value.code, e.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL")
    assert "--queue-size" in e.value.resolution
    status = c.status()
    assert status.running.method == "Img2Img" and status.running.width == 256
    # The slow shape was never measured: estimated from the measured one by scaling.
    assert status.estimated_wait_ms > 0
    # A queued client that cancels frees its place at once.
    waiting[0].cancel()
    wait_until(lambda: c.status().queue_length == 1)
    assert c.img2img_request  # the queue takes a new job again
    extra = c.stub.Img2Img.future(c.img2img_request(INPUT, "q", seed=9))
    wait_until(lambda: c.status().queue_length == 2)
    t.join()
    assert waiting[1].result().metadata.seeds == [1]
    assert extra.result().metadata.seeds == [9]
    assert not isinstance(slow[0], SdxlError)
    samples = scrape(s)
    assert samples[("sdxl_errors_total", (("method", "Img2Img"), ("reason", "QUEUE_FULL")))] == 1
    assert samples[("sdxl_errors_total", (("method", "Img2Img"), ("reason", "CANCELLED")))] == 1
    c.close()


def test_deadlines_queued_running_and_server_default(make_server):
    s = make_server("--default-deadline", "0.5")
    c = s.client()
    # Running: a deadline shorter than the job stops it at the next step.
    t0 = time.time()
    with pytest.raises(SdxlError) as e:
        c.img2img(INPUT, "slow", seed=1, timeout=0.5 * SLOW, **SLOW_JOB)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: not c.status().HasField("running"), timeout=5)
    assert time.time() - t0 < 2.0 * SLOW  # well before the ~2 s the job needs
    # Queued: behind a slow job, a short deadline expires in the queue and the job leaves it.
    # Two slow jobs (one running, one waiting) keep the queue busy for ~4 s, so the requests
    # below wait behind them however fast or loaded the machine is.
    slow_client = Client(s.target, timeout=30 * SLOW)
    t, _ = start_slow_job(slow_client)
    wait_until(lambda: c.status().HasField("running"))
    t2, _ = start_slow_job(slow_client)
    wait_until(lambda: c.status().queue_length == 1)
    with pytest.raises(SdxlError) as e:
        c.img2img(INPUT, "late", timeout=0.3)
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: c.status().queue_length <= 1, timeout=2)
    # No client deadline: the server's --default-deadline (0.5 s) applies, with its details.
    with pytest.raises(SdxlError) as e:
        c.img2img(INPUT, "default deadline", seed=2)
    assert (e.value.code, e.value.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED,
                                              "DEADLINE_EXCEEDED")
    t.join()
    t2.join()
    samples = scrape(s)
    assert samples[("sdxl_errors_total",
                    (("method", "Img2Img"), ("reason", "DEADLINE_EXCEEDED")))] == 3
    c.close()
