"""Health transitions (NOT_SERVING while the model loads, SERVING, NOT_SERVING at shutdown),
MODEL_NOT_READY while loading, and graceful shutdown draining or cancelling the queue."""
import json
import os
import shutil
import signal
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import MODEL, SLOW, Sdxld, png_bytes
from sdxl_client import SdxlError
from test_queue import SLOW_JOB, start_slow_job, wait_until

INPUT = png_bytes(64, 64)


def held_model(tmp_path):
    """A copy of the tiny model whose model_index.json is a FIFO: the server's load blocks on
    it until the test writes the file, so the loading state can be observed for sure."""
    model = tmp_path / "held-model"
    model.mkdir()
    for entry in MODEL.iterdir():
        if entry.name != "model_index.json":
            (model / entry.name).symlink_to(entry)
    os.mkfifo(model / "model_index.json")
    return model, (MODEL / "model_index.json").read_bytes()


def release(model, content: bytes):
    """Answers the server's read of the FIFO, then puts a regular file in its place for any
    later read."""
    fifo = model / "model_index.json"
    fd = os.open(fifo, os.O_WRONLY)  # blocks until the server opens it for reading
    os.write(fd, content)
    (model / "model_index.tmp").write_bytes(content)
    os.replace(model / "model_index.tmp", fifo)
    os.close(fd)


def test_health_transitions_and_model_not_ready(tmp_path):
    model, content = held_model(tmp_path)
    s = Sdxld(model=model, wait_serving=False)
    try:
        watch_channel = grpc.insecure_channel(s.target)
        watch = health_pb2_grpc.HealthStub(watch_channel).Watch(
            health_pb2.HealthCheckRequest(service="sdxl.v1.ImageGeneration"))
        seen = []
        watcher = threading.Thread(target=lambda: seen.extend(
            health_pb2.HealthCheckResponse.ServingStatus.Name(r.status) for r in watch))
        watcher.start()
        assert s.health() == "NOT_SERVING"
        with s.client() as c, pytest.raises(SdxlError) as e:
            c.img2img(INPUT, "too early")
        assert (e.value.code, e.value.reason) == (grpc.StatusCode.UNAVAILABLE, "MODEL_NOT_READY")
        assert not s.client().status().ready

        feeder = threading.Thread(target=release, args=(model, content), daemon=True)
        feeder.start()
        s.wait_health("SERVING")
        feeder.join()
        with s.client() as c:
            assert c.img2img(INPUT, "now", seed=1).seeds == [1]
        assert s.stop() == 0
        watcher.join(timeout=10 * SLOW)
        assert seen == ["NOT_SERVING", "SERVING", "NOT_SERVING"]
        watch_channel.close()
    finally:
        s.close()


def test_shutdown_drains_the_queue(make_server):
    s = make_server()
    c = s.client()
    t, slow = start_slow_job(c)
    wait_until(lambda: c.status().HasField("running"))
    queued = [c.stub.Img2Img.future(c.img2img_request(INPUT, "q", seed=i)) for i in range(3)]
    wait_until(lambda: c.status().queue_length == 3)
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=60 * SLOW) == 0
    t.join()
    assert not isinstance(slow[0], SdxlError)
    assert [f.result().metadata.seeds[0] for f in queued] == [0, 1, 2]
    assert "finishing the queued jobs (3 waiting)" in s.log()


def test_shutdown_cancel_answers_queued_jobs_unavailable(make_server):
    s = make_server("--on-shutdown", "cancel")
    c = s.client()
    t, slow = start_slow_job(c)
    wait_until(lambda: c.status().HasField("running"))
    queued = [c.stub.Img2Img.future(c.img2img_request(INPUT, "q", seed=i)) for i in range(2)]
    wait_until(lambda: c.status().queue_length == 2)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30 * SLOW) == 0
    assert time.time() - t0 < 2.0 * SLOW  # the running job stopped at its next step
    t.join()
    for f in queued:
        err = SdxlError.from_rpc_error(f.exception())
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
    assert isinstance(slow[0], SdxlError) and slow[0].reason == "SHUTTING_DOWN"
