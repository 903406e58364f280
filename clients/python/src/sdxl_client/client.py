"""A typed wrapper over the generated sdxl.v1.ImageGeneration stubs.

Each call returns plain dataclasses; every failure raises SdxlError with the server's stable
reason code (INVALID_IMAGE, QUEUE_FULL, …), the offending field and a suggested resolution,
read from the google.rpc.Status the server puts in the call's trailing metadata.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Union

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sdxl_client.proto import image_generation_pb2 as pb
from sdxl_client.proto import image_generation_pb2_grpc as pb_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20

_FORMATS = {
    "png": pb.IMAGE_FORMAT_PNG,
    "jpeg": pb.IMAGE_FORMAT_JPEG,
    "jpg": pb.IMAGE_FORMAT_JPEG,
    "webp": pb.IMAGE_FORMAT_WEBP,
}


class SdxlError(Exception):
    """A call that failed: the gRPC code, the server's reason and what to do about it."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "",
                 field: str = "", resolution: str = "",
                 violations: Optional[Dict[str, str]] = None):
        super().__init__(f"{code.name} {reason}: {message}" if reason else
                         f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.field = field
        self.resolution = resolution
        self.violations = violations or {}

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "SdxlError":
        reason = field_name = resolution = ""
        violations: Dict[str, str] = {}
        status = rpc_status.from_call(error)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason = info.reason
                    field_name = info.metadata.get("field", "")
                    resolution = info.metadata.get("resolution", "")
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    for v in bad.field_violations:
                        violations[v.field] = v.description
        return cls(error.code(), error.details() or "", reason, field_name, resolution,
                   violations)


@dataclass
class Image:
    index: int
    seed: int
    data: bytes
    format: str          # "PNG", "JPEG" or "WEBP"
    mime_type: str
    width: int
    height: int
    thumbnail: bytes = b""

    @classmethod
    def from_pb(cls, m: pb.GeneratedImage) -> "Image":
        return cls(m.index, m.seed, m.data, pb.ImageFormat.Name(m.format)[len("IMAGE_FORMAT_"):],
                   m.mime_type, m.width, m.height, m.thumbnail)


@dataclass
class Result:
    request_id: str
    seeds: List[int]
    images: List[Image] = field(default_factory=list)
    parameters: Dict[str, object] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    queue_sequence: int = 0
    run_sequence: int = 0

    @classmethod
    def from_pb(cls, metadata: pb.GenerationMetadata, images: List[Image]) -> "Result":
        return cls(metadata.request_id, list(metadata.seeds), images,
                   json_format.MessageToDict(metadata.parameters,
                                             preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True),
                   json_format.MessageToDict(metadata.timings, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True),
                   metadata.queue_sequence, metadata.run_sequence)


@dataclass
class Queued:
    request_id: str
    position: int
    estimated_wait_ms: float  # -1 when the server has measured nothing yet


@dataclass
class Progress:
    stage: str                # "TEXT", "VAE_ENCODE", "DENOISE", "VAE_DECODE"
    step: int
    total_steps: int


Event = Union[Queued, Progress, Image, Result]


def _set_optional(msg, **values) -> None:
    for name, value in values.items():
        if value is not None:
            setattr(msg, name, value)


class Client:
    """A connection to sdxld. target: "HOST:PORT" or "unix:/path". token: the shared secret
    of --auth-token-file, sent as "authorization: Bearer <token>". timeout: default seconds
    per call (None: no deadline)."""

    def __init__(self, target: str = DEFAULT_TARGET, token: Optional[str] = None,
                 timeout: Optional[float] = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ])
        self._stub = pb_grpc.ImageGenerationStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def stub(self) -> pb_grpc.ImageGenerationStub:
        """The raw generated stub, for what the wrapper does not cover."""
        return self._stub

    def _call(self, method, request, timeout):
        try:
            return method(request, timeout=timeout if timeout is not None else self._timeout,
                          metadata=self._metadata)
        except grpc.RpcError as e:
            raise SdxlError.from_rpc_error(e) from None

    @staticmethod
    def img2img_request(image: bytes, prompt: str, *, negative_prompt: str = "",
                        num_inference_steps: Optional[int] = None,
                        strength: Optional[float] = None,
                        guidance_scale: Optional[float] = None, seed: Optional[int] = None,
                        width: int = 0, height: int = 0, output_format: str = "png",
                        quality: Optional[int] = None, thumbnail: bool = False,
                        request_id: str = "",
                        batch_size: Optional[int] = None) -> pb.Img2ImgRequest:
        req = pb.Img2ImgRequest(prompt=prompt, image=image, negative_prompt=negative_prompt,
                                width=width, height=height,
                                output_format=_FORMATS[output_format.lower()],
                                thumbnail=thumbnail, request_id=request_id)
        _set_optional(req, num_inference_steps=num_inference_steps, strength=strength,
                      guidance_scale=guidance_scale, seed=seed, quality=quality,
                      batch_size=batch_size)
        return req

    def img2img(self, image: bytes, prompt: str, *, timeout: Optional[float] = None,
                **params) -> Result:
        """One image. params: negative_prompt, num_inference_steps (2), strength (0.8),
        guidance_scale (0.0), seed (random), width, height, output_format ("png"), quality,
        thumbnail, request_id."""
        resp = self._call(self._stub.Img2Img, self.img2img_request(image, prompt, **params),
                          timeout)
        return Result.from_pb(resp.metadata, [Image.from_pb(resp.image)])

    def img2img_batch(self, image: bytes, prompt: str, batch_size: int, *,
                      timeout: Optional[float] = None, **params) -> Result:
        """batch_size variations with seeds seed, seed+1, …, all in one answer."""
        req = self.img2img_request(image, prompt, batch_size=batch_size, **params)
        resp = self._call(self._stub.Img2ImgBatch, req, timeout)
        return Result.from_pb(resp.metadata, [Image.from_pb(m) for m in resp.images])

    def img2img_stream(self, image: bytes, prompt: str, *, timeout: Optional[float] = None,
                       **params) -> Iterator[Event]:
        """Queued, Progress…, each Image as soon as it is ready, then the Result (whose
        images list is empty: the images came before it)."""
        req = self.img2img_request(image, prompt, **params)
        try:
            for ev in self._stub.Img2ImgStream(
                    req, timeout=timeout if timeout is not None else self._timeout,
                    metadata=self._metadata):
                kind = ev.WhichOneof("event")
                if kind == "queued":
                    yield Queued(ev.queued.request_id, ev.queued.position,
                                 ev.queued.estimated_wait_ms)
                elif kind == "progress":
                    yield Progress(pb.Stage.Name(ev.progress.stage)[len("STAGE_"):],
                                   ev.progress.step, ev.progress.total_steps)
                elif kind == "image":
                    yield Image.from_pb(ev.image)
                elif kind == "done":
                    yield Result.from_pb(ev.done, [])
        except grpc.RpcError as e:
            raise SdxlError.from_rpc_error(e) from None

    def txt2img(self, prompt: str, *, timeout: Optional[float] = None,
                negative_prompt: str = "", num_inference_steps: Optional[int] = None,
                guidance_scale: Optional[float] = None, seed: Optional[int] = None,
                width: int = 0, height: int = 0, output_format: str = "png",
                quality: Optional[int] = None, thumbnail: bool = False, request_id: str = "",
                batch_size: Optional[int] = None) -> Result:
        """Images from the prompt alone (width/height 0: the model's size)."""
        req = pb.Txt2ImgRequest(prompt=prompt, negative_prompt=negative_prompt, width=width,
                                height=height, output_format=_FORMATS[output_format.lower()],
                                thumbnail=thumbnail, request_id=request_id)
        _set_optional(req, num_inference_steps=num_inference_steps,
                      guidance_scale=guidance_scale, seed=seed, quality=quality,
                      batch_size=batch_size)
        resp = self._call(self._stub.Txt2Img, req, timeout)
        return Result.from_pb(resp.metadata, [Image.from_pb(m) for m in resp.images])

    def status(self, timeout: Optional[float] = None) -> pb.StatusResponse:
        """Queue length, running job, estimated wait, per-shape estimates, counters, model."""
        return self._call(self._stub.GetStatus, pb.GetStatusRequest(), timeout)

    def health(self, timeout: Optional[float] = None) -> str:
        """"SERVING" or "NOT_SERVING" (grpc.health.v1 Check of the whole server)."""
        method = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda _: b"",
            response_deserializer=_health_status)
        return self._call(method, None, timeout)


def _health_status(data: bytes) -> str:
    # HealthCheckResponse is one enum field (1): decoded here so that grpcio-health-checking
    # is not a dependency.
    names = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    return names.get(data[1] if len(data) >= 2 and data[0] == 0x08 else 0, "UNKNOWN")
