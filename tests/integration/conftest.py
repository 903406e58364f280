"""Fixtures for the integration tests: real sdxld processes on the tiny model, free ports,
input images, and the engine's own output (build/sdxl-gen) for comparisons.

Environment (set by run.sh): SDXL_BUILD_DIR (holds sdxld, sdxl, sdxl-gen and models/tiny-a).
"""
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image as PILImage

from sdxl_client import Client

BUILD = Path(os.environ.get("SDXL_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
MODEL = BUILD / "models" / "tiny-a"
# Sanitizer builds run the engine several times slower.
SLOW = float(os.environ.get("SDXL_TEST_SLOWDOWN", "1"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A deterministic, non-uniform RGB image."""
    img = PILImage.new("RGB", (width, height))
    img.putdata([((x * 7 + seed * 31) % 256, (y * 5 + seed * 17) % 256, (x * y + seed) % 256)
                 for y in range(height) for x in range(width)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def pixels(data: bytes) -> bytes:
    return PILImage.open(io.BytesIO(data)).convert("RGB").tobytes()


class Sdxld:
    """One sdxld process; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, *args: str, model: Path = MODEL, wait_serving: bool = True):
        self.port = free_port()
        self.metrics_port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_file = tempfile.NamedTemporaryFile("w+", prefix="sdxld-", suffix=".log",
                                                    delete=False)
        cmd = [str(BUILD / "sdxld"), "--model", str(model), "--listen", self.target,
               "--metrics-listen", f"127.0.0.1:{self.metrics_port}", "--log-level", "debug",
               *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel(self.target)
        self.wait_listening()
        if wait_serving:
            self.wait_health("SERVING")

    def client(self, **kw) -> Client:
        return Client(self.target, **kw)

    def health(self, service: str = "") -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            assert self.proc.poll() is None, f"sdxld exited early:\n{self.log()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sdxld did not listen:\n{self.log()}")

    def wait_health(self, want: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            assert self.proc.poll() is None, f"sdxld exited:\n{self.log()}"
            if self.health() == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"health never became {want}:\n{self.log()}")

    def log(self) -> str:
        self.log_file.flush()
        return Path(self.log_file.name).read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"sdxld did not stop:\n{self.log()}")
        return self.proc.returncode

    def close(self) -> None:
        """Stops the server if it still runs, removes its log, and checks it exited 0 with no
        sanitizer report. Closing twice does nothing."""
        if self.log_file.closed:
            return
        try:
            code = self.stop()
        finally:
            text = self.log()
            self.log_file.close()
            os.unlink(self.log_file.name)
        assert code == 0, f"sdxld exited {code}:\n{text}"
        assert "Sanitizer" not in text and "runtime error" not in text, text


@pytest.fixture(scope="session")
def server():
    """The shared server: default flags except a pixel limit low enough to test."""
    s = Sdxld("--max-pixels", "262144", "--io-threads", "2")
    yield s
    s.close()


@pytest.fixture
def make_server():
    """Starts extra servers with their own flags; stops them after the test."""
    started = []

    def make(*args, **kw):
        s = Sdxld(*args, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.close()


@pytest.fixture(scope="session")
def engine_output(tmp_path_factory):
    """The engine's own image for (input image, prompt, seed, steps, strength), from
    build/sdxl-gen (no server involved): the reference server answers must equal."""
    tool = BUILD / "sdxl-gen"
    if not tool.exists():
        pytest.skip("build/sdxl-gen is not built")
    work = tmp_path_factory.mktemp("sdxl-gen")
    cache = {}

    def run(image: bytes, prompt: str, seed: int, steps: int = 2, strength: float = 0.8) -> bytes:
        key = (image, prompt, seed, steps, strength)
        if key not in cache:
            src = work / f"in-{len(cache)}.png"
            out = work / f"out-{len(cache)}.png"
            src.write_bytes(image)
            subprocess.run([str(tool), "--model", str(MODEL), "--image", str(src), "--prompt",
                            prompt, "--seed", str(seed), "--steps", str(steps), "--strength",
                            str(strength), "-o", str(out)], check=True, capture_output=True)
            cache[key] = pixels(out.read_bytes())
        return cache[key]

    yield run
    shutil.rmtree(work, ignore_errors=True)
