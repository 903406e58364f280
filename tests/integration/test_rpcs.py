"""Every RPC through the Python client (and the C CLI), against a real sdxld on the tiny model;
images compared with the engine's own output (build/sdxl-gen) for the same parameters."""
import io
import os
import stat
import subprocess
import tempfile

import pytest
from PIL import Image as PILImage

from conftest import BUILD, pixels, png_bytes
from sdxl_client import Client, Image, Progress, Queued, Result, SdxlError

INPUT = png_bytes(70, 60, seed=1)  # not a multiple of 8: the output is 64 × 56


def test_img2img_equals_engine_and_reports_what_it_applied(server, engine_output):
    with server.client() as c:
        r = c.img2img(INPUT, "a red fox", seed=7, request_id="my-request-1")
    assert r.request_id == "my-request-1"
    assert r.seeds == [7]
    img = r.images[0]
    assert (img.format, img.mime_type, img.width, img.height) == ("PNG", "image/png", 64, 56)
    assert pixels(img.data) == engine_output(INPUT, "a red fox", 7)
    p = r.parameters
    assert p["num_inference_steps"] == 2 and abs(p["strength"] - 0.8) < 1e-6
    assert p["guidance_scale"] == 0 and p["batch_size"] == 1 and p["unet_steps"] == 1
    assert (p["input_width"], p["input_height"], p["width"], p["height"]) == (70, 60, 64, 56)
    t = r.timings
    assert t["inference_ms"] > 0 and t["unet_ms"] > 0 and t["vae_decode_ms"] > 0
    assert t["total_ms"] >= t["inference_ms"] and t["queue_wait_ms"] >= 0


def test_unset_seed_is_random_and_returned(server):
    with server.client() as c:
        a = c.img2img(INPUT, "a cat")
        b = c.img2img(INPUT, "a cat")
        again = c.img2img(INPUT, "a cat", seed=a.seeds[0])
    assert a.seeds != b.seeds
    assert a.images[0].seed == a.seeds[0]
    assert pixels(again.images[0].data) == pixels(a.images[0].data)
    assert a.request_id != b.request_id and a.request_id.startswith("req-")


def test_batch_image_i_equals_single_with_seed_plus_i(server, engine_output):
    with server.client() as c:
        r = c.img2img_batch(INPUT, "a boat", 3, seed=10, num_inference_steps=4, strength=0.5)
    assert r.seeds == [10, 11, 12]
    assert [i.index for i in r.images] == [0, 1, 2]
    assert r.parameters["unet_steps"] == 2
    for i, img in enumerate(r.images):
        assert img.seed == 10 + i
        assert pixels(img.data) == engine_output(INPUT, "a boat", 10 + i, 4, 0.5)


def test_stream_sends_queued_progress_images_then_metadata(server):
    with server.client() as c:
        events = list(c.img2img_stream(INPUT, "a boat", seed=10, batch_size=2,
                                       num_inference_steps=4, strength=0.5))
        batch = c.img2img_batch(INPUT, "a boat", 2, seed=10, num_inference_steps=4,
                                strength=0.5)
    assert isinstance(events[0], Queued) and events[0].position >= 1
    assert isinstance(events[-1], Result) and events[-1].seeds == [10, 11]
    progress = [e for e in events if isinstance(e, Progress)]
    steps = [e.step for e in progress if e.stage == "DENOISE"]
    assert steps and steps[-1] == 2 and all(e.total_steps == 2 for e in progress)
    images = sorted((e for e in events if isinstance(e, Image)), key=lambda i: i.index)
    assert [i.seed for i in images] == [10, 11]
    assert [pixels(i.data) for i in images] == [pixels(i.data) for i in batch.images]
    # The images come after the denoising and before the metadata.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("Image") > max(i for i, e in enumerate(events)
                                      if isinstance(e, Progress) and e.stage == "DENOISE")


def test_txt2img_batches_formats_and_thumbnails(server):
    with server.client() as c:
        r = c.txt2img("a lighthouse", seed=3, batch_size=2, thumbnail=True)
        single = c.txt2img("a lighthouse", seed=4)
        j = c.txt2img("a lighthouse", seed=3, output_format="jpeg", quality=80)
        w = c.txt2img("a lighthouse", seed=3, output_format="webp")
    assert r.seeds == [3, 4] and r.parameters["strength"] == 0
    # Image i of a batch is the single image of seed + i.
    assert pixels(r.images[1].data) == pixels(single.images[0].data)
    for img in r.images:
        assert PILImage.open(io.BytesIO(img.data)).size == (64, 64)  # the model's default
        thumb = PILImage.open(io.BytesIO(img.thumbnail))
        assert thumb.format == "WEBP" and max(thumb.size) == 256
    decoded = PILImage.open(io.BytesIO(j.images[0].data))
    assert decoded.format == "JPEG" and j.parameters["quality"] == 80
    assert j.images[0].mime_type == "image/jpeg"
    assert PILImage.open(io.BytesIO(w.images[0].data)).format == "WEBP"
    assert w.images[0].thumbnail == b""


def test_status_reports_queue_estimates_counters_and_model(server):
    with server.client() as c:
        c.img2img(INPUT, "a cat", seed=1)
        s = c.status()
    assert s.ready and s.queue_capacity == 64 and s.queue_length == 0
    assert not s.HasField("running")
    shapes = {(e.width, e.height, e.num_inference_steps, e.batch_size): e for e in s.estimates}
    assert shapes[(64, 56, 2, 1)].samples >= 1 and shapes[(64, 56, 2, 1)].average_ms > 0
    assert s.estimated_wait_ms == 0
    assert s.requests_total >= 1 and s.images_generated >= 1
    assert s.model.name == "tiny-a" and s.model.backend == "cpu" and s.model.weight_bytes > 0
    assert s.resident_memory_bytes > 0 and s.uptime_s > 0


def test_health_check(server):
    assert server.health("") == "SERVING"
    assert server.health("sdxl.v1.ImageGeneration") == "SERVING"
    with server.client() as c:
        assert c.health() == "SERVING"
    with pytest.raises(Exception) as e:
        server.health("no.such.Service")
    assert "NOT_FOUND" in str(e.value)


def test_unix_socket_with_permissions(make_server):
    # A short directory: a socket path has at most 107 bytes.
    with tempfile.TemporaryDirectory(prefix="sdxl-") as tmp:
        path = os.path.join(tmp, "sdxld.sock")
        s = make_server("--socket", path, "--socket-mode", "0660")
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with Client(f"unix:{path}") as c:
            assert c.health() == "SERVING"
            assert c.img2img(INPUT, "a cat", seed=2).seeds == [2]
        s.close()
        assert not os.path.exists(path)  # removed at exit


def test_c_cli(server, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(INPUT)
    cli = str(BUILD / "sdxl")
    out = subprocess.run([cli, "--server", server.target, "img2img", "--image", str(src),
                          "--prompt", "a red fox", "--seed", "7", "--out",
                          str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "denoise step 1/1" in out.stderr and "seed 7" in out.stdout
    with server.client() as c:
        ref = c.img2img(INPUT, "a red fox", seed=7)
    assert pixels((tmp_path / "o.png").read_bytes()) == pixels(ref.images[0].data)
    out = subprocess.run([cli, "--server", server.target, "batch", "--image", str(src),
                          "--prompt", "x", "--batch-size", "2", "--seed", "5", "--out",
                          str(tmp_path / "b.webp"), "--format", "webp"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "b-0.webp").exists() and (tmp_path / "b-1.webp").exists()
    bad = subprocess.run([cli, "--server", server.target, "img2img", "--image", str(src),
                          "--prompt", "x", "--steps", "1", "--strength", "0.5"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "INVALID_PARAMETER" in bad.stderr
    assert "field:      strength" in bad.stderr
    st = subprocess.run([cli, "--server", server.target, "status"], capture_output=True,
                        text=True, timeout=60)
    assert st.returncode == 0 and "ready:              yes" in st.stdout
    h = subprocess.run([cli, "--server", server.target, "health"], capture_output=True,
                       text=True, timeout=60)
    assert h.returncode == 0 and h.stdout.strip() == "SERVING"


def test_sdxl_error_for_bad_parameters_names_every_field(server):
    with server.client() as c, pytest.raises(SdxlError) as e:
        c.img2img(INPUT, "x", num_inference_steps=0, guidance_scale=-1, quality=101)
    assert e.value.reason == "INVALID_PARAMETER"
    assert set(e.value.violations) == {"num_inference_steps", "guidance_scale", "quality"}
