"""Each error the server can be driven to by a client's bad input: the gRPC code, the stable
reason, the field and a resolution, read with grpcio's stock rpc_status helper."""
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from conftest import png_bytes
from sdxl_client import SdxlError
from sdxl_client.proto import image_generation_pb2 as pb

INPUT = png_bytes(64, 64)


def call_error(fn) -> SdxlError:
    with pytest.raises(SdxlError) as e:
        fn()
    assert e.value.resolution or e.value.reason in ("CANCELLED",), e.value
    return e.value


def test_details_are_readable_with_stock_rpc_status(server):
    stub = server.client().stub
    with pytest.raises(grpc.RpcError) as e:
        stub.Img2Img(pb.Img2ImgRequest(prompt="x", image=b"GIF89a....."))
    status = rpc_status.from_call(e.value)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, info.metadata["field"]) == ("INVALID_IMAGE", "sdxl.v1",
                                                                 "image")
    assert "GIF" in status.message and info.metadata["resolution"]


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, b"not an image",
                                  png_bytes(64, 64)[:-30]])
def test_invalid_image(server, data):
    with server.client() as c:
        e = call_error(lambda: c.img2img(data, "x"))
    if data:
        assert (e.code, e.reason, e.field) == (grpc.StatusCode.INVALID_ARGUMENT,
                                               "INVALID_IMAGE", "image")
    else:
        assert (e.reason, e.field) == ("INVALID_PARAMETER", "image")


def test_image_too_large(server):
    # The shared server runs with --max-pixels 262144 (512 × 512).
    with server.client() as c:
        e = call_error(lambda: c.img2img(png_bytes(600, 500), "x"))
    assert (e.code, e.reason, e.field) == (grpc.StatusCode.INVALID_ARGUMENT, "IMAGE_TOO_LARGE",
                                           "image")
    assert "--max-pixels" in e.resolution


@pytest.mark.parametrize("params,field", [
    (dict(num_inference_steps=1, strength=0.5), "strength"),   # int(1 × 0.5) = 0 steps
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(num_inference_steps=51), "num_inference_steps"),
    (dict(strength=0.0), "strength"),
    (dict(strength=1.5), "strength"),
    (dict(guidance_scale=float("nan")), "guidance_scale"),
    (dict(width=100), "width"),
    (dict(height=4096), "height"),
    (dict(quality=0), "quality"),
    (dict(batch_size=2), "batch_size"),                        # Img2Img makes one image
    (dict(request_id="has spaces"), "request_id"),
    (dict(width=1024, height=512), "width"),                   # over --max-pixels
])
def test_invalid_parameter(server, params, field):
    with server.client() as c:
        e = call_error(lambda: c.img2img(INPUT, "x", **params))
    assert (e.code, e.reason, e.field) == (grpc.StatusCode.INVALID_ARGUMENT,
                                           "INVALID_PARAMETER", field)


def test_invalid_parameters_in_batch_and_txt2img(server):
    with server.client() as c:
        e = call_error(lambda: c.img2img_batch(INPUT, "x", 9))       # over --max-batch 8
        assert (e.reason, e.field) == ("INVALID_PARAMETER", "batch_size")
        e = call_error(lambda: c.txt2img("x", width=12))
        assert (e.reason, e.field) == ("INVALID_PARAMETER", "width")
        e = call_error(lambda: c.txt2img("x", batch_size=0))
        assert (e.reason, e.field) == ("INVALID_PARAMETER", "batch_size")


def test_invalid_request_bytes(server):
    raw = server.channel.unary_unary("/sdxl.v1.ImageGeneration/Img2Img",
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\xff\xff\xff\xff", timeout=10)
    err = SdxlError.from_rpc_error(e.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


def test_invalid_utf8_prompt(server):
    # Python refuses to serialize bad UTF-8 in a string field: build the bytes by hand
    # (field 1, length 2, bytes ff fe), plus a valid image (field 2).
    image = INPUT
    body = b"\x0a\x02\xff\xfe" + b"\x12" + _varint(len(image)) + image
    raw = server.channel.unary_unary("/sdxl.v1.ImageGeneration/Img2Img",
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(body, timeout=10)
    err = SdxlError.from_rpc_error(e.value)
    assert (err.reason, err.field) in {("INVALID_PARAMETER", "prompt"), ("INVALID_REQUEST", "")}


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def test_unknown_method_is_unimplemented(server):
    raw = server.channel.unary_unary("/sdxl.v1.ImageGeneration/NoSuchMethod",
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        raw(b"", timeout=10)
    err = SdxlError.from_rpc_error(e.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED")


def test_out_of_memory_when_over_the_memory_budget(make_server):
    s = make_server("--memory-budget", "1K")
    with s.client() as c:
        e = call_error(lambda: c.img2img(INPUT, "x"))
    assert (e.code, e.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OUT_OF_MEMORY")


def test_unauthenticated_without_the_token(make_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    token_file.chmod(0o600)
    s = make_server("--auth-token-file", str(token_file))
    with s.client() as c:
        e = call_error(lambda: c.status())
        assert (e.code, e.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
        assert c.health() == "SERVING"   # probes need no token
    with s.client(token="wrong") as c:
        assert call_error(lambda: c.img2img(INPUT, "x")).reason == "UNAUTHENTICATED"
    with s.client(token="s3cret-token") as c:
        assert c.status().ready
        assert c.img2img(INPUT, "x", seed=1).seeds == [1]
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics").read().decode()
    assert "sdxl_auth_failures_total 2" in text
