"""Server reflection with stock clients (grpcio-reflection's descriptor database: list the
services, resolve a method by name, call it dynamically), v1 and v1alpha; and the Prometheus
endpoint scraped, parsed with prometheus_client's parser, and fed hostile HTTP."""
import socket
import urllib.error
import urllib.request

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import \
    ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from conftest import png_bytes

SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection", "sdxl.v1.ImageGeneration"]


def test_reflection_lists_services_and_calls_a_method_by_name(server):
    db = ProtoReflectionDescriptorDatabase(server.channel)
    assert sorted(db.get_services()) == SERVICES
    pool = DescriptorPool(db)
    method = pool.FindMethodByName("sdxl.v1.ImageGeneration.Img2Img")
    Request = message_factory.GetMessageClass(method.input_type)
    Response = message_factory.GetMessageClass(method.output_type)
    call = server.channel.unary_unary("/sdxl.v1.ImageGeneration/Img2Img",
                                      request_serializer=Request.SerializeToString,
                                      response_deserializer=Response.FromString)
    resp = call(Request(prompt="by reflection", image=png_bytes(64, 64), seed=11), timeout=60)
    assert list(resp.metadata.seeds) == [11] and resp.image.data.startswith(b"\x89PNG")
    assert pool.FindMessageTypeByName("sdxl.v1.StatusResponse").fields_by_name["queue_length"]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_file_queries_and_errors(server, version):
    rpc = server.channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_by_filename="sdxl/v1/image_generation.proto"),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.health.v1.Health.Check"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        reflection_pb2.ServerReflectionRequest(
            all_extension_numbers_of_type="sdxl.v1.Img2ImgRequest"),
    ]
    answers = list(rpc(iter(requests), timeout=10))
    assert len(answers) == 5
    assert sorted(s.name for s in answers[0].list_services_response.service) == SERVICES
    f = descriptor_pb2.FileDescriptorProto.FromString(
        answers[1].file_descriptor_response.file_descriptor_proto[0])
    assert f.package == "sdxl.v1" and f.service[0].name == "ImageGeneration"
    assert [m.name for m in f.service[0].method] == ["Img2Img", "Img2ImgBatch", "Img2ImgStream",
                                                    "Txt2Img", "GetStatus"]
    h = descriptor_pb2.FileDescriptorProto.FromString(
        answers[2].file_descriptor_response.file_descriptor_proto[0])
    assert h.name == "grpc/health/v1/health.proto"
    assert answers[3].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert answers[4].all_extension_numbers_response.base_type_name == "sdxl.v1.Img2ImgRequest"
    assert answers[0].original_request.list_services == ""


def scrape_text(server, path="/metrics") -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}{path}",
                                  timeout=10).read().decode()


def test_metrics_scraped_and_parsed(server):
    with server.client() as c:
        c.img2img(png_bytes(64, 64), "metrics", seed=1)
        with pytest.raises(Exception):
            c.img2img(b"junk", "metrics")
        c.status()
    families = {f.name: f for f in text_string_to_metric_families(scrape_text(server))}
    types = {name: f.type for name, f in families.items()}
    assert types["sdxl_requests"] == "counter" and types["sdxl_errors"] == "counter"
    assert types["sdxl_request_duration_seconds"] == "histogram"
    assert types["sdxl_queue_wait_seconds"] == "histogram"
    assert types["sdxl_inference_seconds"] == "histogram"
    assert types["sdxl_queue_length"] == "gauge" and types["sdxl_resident_memory_bytes"] == "gauge"

    def value(family, **labels):
        return sum(s.value for s in families[family].samples
                   if all(s.labels.get(k) == v for k, v in labels.items())
                   and s.name.endswith(("_total", family)))

    assert value("sdxl_requests", method="Img2Img", code="OK") >= 1
    assert value("sdxl_requests", method="Img2Img", code="INVALID_ARGUMENT") >= 1
    assert value("sdxl_errors", method="Img2Img", reason="INVALID_IMAGE") >= 1
    assert value("sdxl_requests", method="GetStatus", code="OK") >= 1
    assert value("sdxl_images_generated") >= 1
    assert value("sdxl_resident_memory_bytes") > 0 and value("sdxl_ready") == 1
    counts = [s for s in families["sdxl_inference_seconds"].samples
              if s.name == "sdxl_inference_seconds_count"]
    assert counts[0].value >= 1
    assert any(s.labels.get("backend") == "cpu" for s in families["sdxl_model_weight_bytes"].samples)


def raw_http(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.metrics_port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_metrics_endpoint_refuses_what_it_does_not_serve(server):
    assert raw_http(server, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert raw_http(server, b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert raw_http(server, b"\x00\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_http(server, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000).startswith(
        b"HTTP/1.1 431")
    head = raw_http(server, b"HEAD /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
    # Still serving after all that.
    assert "sdxl_queue_length" in scrape_text(server)
    with pytest.raises(urllib.error.HTTPError):
        scrape_text(server, "/metricsx")
