/*
 * test_server_protocol.c — what the server puts on and reads from the wire, without a
 * network: the google.rpc.Status error details, request parsing and validation (every bad
 * field named, defaults applied, images decoded within the limits), the reflection index of
 * the embedded descriptor set, and the Prometheus text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "io/image.h"
#include "sdxl/v1/image_generation.pb-c.h"
#include "server/descriptor_index.h"
#include "server/errors.h"
#include "server/metrics.h"
#include "server/request.h"

static void error_details_round_trip(void **state)
{
    server_error e;
    server_error_set(&e, REASON_INVALID_PARAMETER, "fix it", "bad %s", "things");
    server_error_add_violation(&e, "strength", "%g: must be in (0, 1]", 1.5);
    server_error_add_violation(&e, "quality", "0");
    assert_int_equal(e.code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(e.field, "strength");
    uint8_t *bytes;
    size_t len;
    assert_true(server_error_pack_details(&e, &bytes, &len));

    /* Read with the plain generated types, as any client would. */
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, bytes);
    assert_non_null(st);
    assert_int_equal(st->code, GRPC_STATUS_INVALID_ARGUMENT);
    assert_string_equal(st->message, "bad things");
    assert_int_equal(st->n_details, 2);
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.ErrorInfo");
    assert_string_equal(st->details[1]->type_url, "type.googleapis.com/google.rpc.BadRequest");
    Google__Rpc__ErrorInfo *info = google__rpc__error_info__unpack(
        NULL, st->details[0]->value.len, st->details[0]->value.data);
    assert_string_equal(info->reason, "INVALID_PARAMETER");
    assert_string_equal(info->domain, "sdxl.v1");
    google__rpc__error_info__free_unpacked(info, NULL);
    google__rpc__status__free_unpacked(st, NULL);

    server_error back;
    assert_true(server_error_unpack_details(bytes, len, &back));
    assert_int_equal(back.reason, REASON_INVALID_PARAMETER);
    assert_string_equal(back.field, "strength");
    assert_string_equal(back.resolution, "fix it");
    assert_int_equal(back.n_violations, 2);
    assert_string_equal(back.violations[1].field, "quality");
    free(bytes);
    assert_false(server_error_unpack_details((const uint8_t *)"\xff\xff", 2, &back));
}

static void reasons_and_engine_errors(void **state)
{
    assert_string_equal(server_reason_name(REASON_QUEUE_FULL), "QUEUE_FULL");
    assert_int_equal(server_reason_code(REASON_QUEUE_FULL), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(server_reason_code(REASON_MODEL_NOT_READY), GRPC_STATUS_UNAVAILABLE);
    assert_string_equal(server_grpc_code_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    sdxl_error err = {.code = SDXL_ERR_INVALID_ARGUMENT, .message = "too big", .field = "width"};
    server_error e;
    server_error_from_engine(&e, &err);
    assert_int_equal(e.reason, REASON_INVALID_PARAMETER);
    assert_string_equal(e.field, "width");
    err.code = SDXL_ERR_OUT_OF_MEMORY;
    server_error_from_engine(&e, &err);
    assert_int_equal(e.reason, REASON_OUT_OF_MEMORY);
    err.code = SDXL_ERR_BACKEND;
    server_error_from_engine(&e, &err);
    assert_int_equal(e.code, GRPC_STATUS_INTERNAL);
    assert_int_equal(e.reason, REASON_DEVICE_ERROR);
}

static const request_limits limits = {
    .max_image_bytes = 1 << 20, .max_pixels = 256 * 256, .max_batch = 4, .max_steps = 50,
    .default_width = 64, .default_height = 48};

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *data = malloc(*len + 1);
    protobuf_c_message_pack(m, data);
    return data;
}

static image_buffer png(int w, int h)
{
    image img;
    assert_int_equal(image_alloc(&img, w, h, NULL), SDXL_OK);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        img.pixels[i] = (uint8_t)(i * 7);
    image_buffer buf;
    image_encode_params ep = image_encode_default_params();
    assert_int_equal(image_encode(&img, &ep, &buf, NULL), SDXL_OK);
    image_free(&img);
    return buf;
}

static bool parse(server_method m, const ProtobufCMessage *msg, gen_request *r, server_error *e)
{
    size_t len;
    uint8_t *data = pack(msg, &len);
    bool ok = request_parse(m, data, len, &limits, r, e);
    free(data);
    return ok;
}

static void request_defaults_and_resolved_size(void **state)
{
    image_buffer img = png(70, 61);
    Sdxl__V1__Img2ImgRequest req = SDXL__V1__IMG2_IMG_REQUEST__INIT;
    req.prompt = "a cat";
    req.image.data = img.data;
    req.image.len = img.size;
    gen_request r;
    server_error e;
    assert_true(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_int_equal(r.steps, 2);
    assert_true(r.strength == 0.8f);
    assert_true(r.guidance_scale == 0.0f);
    assert_int_equal(r.batch_size, 1);
    assert_false(r.seed_set);
    assert_int_equal(r.width, 64);
    assert_int_equal(r.height, 56);
    assert_int_equal(r.input.width, 70);
    assert_int_equal(r.quality, 90);
    assert_int_equal(r.format, IMAGE_FORMAT_PNG);
    assert_memory_equal(r.request_id, "req-", 4);
    assert_int_equal(strlen(r.request_id), 20);
    gen_request_free(&r);

    req._seed_case = SDXL__V1__IMG2_IMG_REQUEST___SEED_SEED;
    req.seed = UINT64_MAX;
    req.request_id = "mine-1";
    req.width = 128;
    assert_true(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_true(r.seed_set && r.seed == UINT64_MAX);
    assert_string_equal(r.request_id, "mine-1");
    assert_int_equal(r.width, 128);
    assert_int_equal(r.height, 56);
    gen_request_free(&r);

    Sdxl__V1__Txt2ImgRequest t = SDXL__V1__TXT2_IMG_REQUEST__INIT;
    t.prompt = "";
    assert_true(parse(METHOD_TXT2IMG, &t.base, &r, &e));
    assert_int_equal(r.width, 64);
    assert_int_equal(r.height, 48);
    assert_false(r.has_input);
    assert_true(r.strength == 0.0f);
    gen_request_free(&r);
    image_buffer_free(&img);
}

static void every_bad_parameter_is_named(void **state)
{
    image_buffer img = png(64, 64);
    Sdxl__V1__Img2ImgRequest req = SDXL__V1__IMG2_IMG_REQUEST__INIT;
    req.prompt = "x";
    req.image.data = img.data;
    req.image.len = img.size;
    req._num_inference_steps_case = SDXL__V1__IMG2_IMG_REQUEST___NUM_INFERENCE_STEPS_NUM_INFERENCE_STEPS;
    req.num_inference_steps = 1;
    req._strength_case = SDXL__V1__IMG2_IMG_REQUEST___STRENGTH_STRENGTH;
    req.strength = 0.5f; /* int(1 × 0.5) = 0 steps */
    req._quality_case = SDXL__V1__IMG2_IMG_REQUEST___QUALITY_QUALITY;
    req.quality = 101;
    req._batch_size_case = SDXL__V1__IMG2_IMG_REQUEST___BATCH_SIZE_BATCH_SIZE;
    req.batch_size = 2;
    req.width = 30;
    req.output_format = 7;
    req.request_id = "has space";
    gen_request r;
    server_error e;
    assert_false(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_int_equal(e.reason, REASON_INVALID_PARAMETER);
    const char *expected[] = {"request_id", "strength", "batch_size", "width", "output_format",
                              "quality"};
    assert_int_equal(e.n_violations, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(e.violations[i].field, expected[i]);
    assert_string_equal(e.field, "request_id");
    assert_non_null(strstr(e.violations[1].description, "no denoising step"));
    /* Img2ImgBatch accepts a batch; Img2Img does not. */
    req.request_id = "";
    req.width = 0;
    req.output_format = 0;
    req.quality = 90;
    req.strength = 1.0f;
    assert_true(parse(METHOD_IMG2IMG_BATCH, &req.base, &r, &e));
    gen_request_free(&r);
    image_buffer_free(&img);
}

static void images_are_decoded_within_the_limits(void **state)
{
    Sdxl__V1__Img2ImgRequest req = SDXL__V1__IMG2_IMG_REQUEST__INIT;
    req.prompt = "x";
    req.image.data = (uint8_t *)"GIF89a\x01\x00\x01\x00";
    req.image.len = 10;
    gen_request r;
    server_error e;
    assert_false(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_int_equal(e.reason, REASON_INVALID_IMAGE);
    assert_string_equal(e.field, "image");
    image_buffer big = png(300, 300); /* over 256 × 256 pixels */
    req.image.data = big.data;
    req.image.len = big.size;
    assert_false(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_int_equal(e.reason, REASON_IMAGE_TOO_LARGE);
    image_buffer_free(&big);
    req.image.len = 0;
    assert_false(parse(METHOD_IMG2IMG, &req.base, &r, &e));
    assert_int_equal(e.reason, REASON_INVALID_PARAMETER);
    assert_string_equal(e.field, "image");
    assert_false(request_parse(METHOD_IMG2IMG, (const uint8_t *)"\xff\xff\xff", 3, &limits, &r,
                               &e));
    assert_int_equal(e.reason, REASON_INVALID_REQUEST);
}

static void reflection_index_of_the_served_protos(void **state)
{
    desc_index idx;
    assert_int_equal(desc_index_build(sdxl_descriptor_set, sdxl_descriptor_set_size, &idx, NULL),
                     SDXL_OK);
    assert_int_equal(idx.n_services, 4);
    const desc_file *f = desc_index_find_symbol(&idx, "sdxl.v1.ImageGeneration.Img2ImgStream");
    assert_non_null(f);
    assert_string_equal(f->name, "sdxl/v1/image_generation.proto");
    assert_ptr_equal(desc_index_find_symbol(&idx, "sdxl.v1.GenerationEvent"), f);
    assert_ptr_equal(desc_index_find_symbol(&idx, "sdxl.v1.Stage"), f);
    assert_ptr_equal(desc_index_find_file(&idx, "sdxl/v1/image_generation.proto"), f);
    const desc_file *h = desc_index_find_symbol(
        &idx, "grpc.health.v1.HealthCheckResponse.ServingStatus");
    assert_non_null(h);
    assert_string_equal(h->name, "grpc/health/v1/health.proto");
    assert_null(desc_index_find_symbol(&idx, "sdxl.v1.Nope"));
    desc_index_free(&idx);
    /* A truncated set is refused, not read past its end. */
    assert_int_equal(desc_index_build(sdxl_descriptor_set, sdxl_descriptor_set_size / 2, &idx,
                                      NULL),
                     SDXL_ERR_FORMAT);
}

static void prometheus_text(void **state)
{
    server_metrics m;
    metrics_init(&m);
    metrics_record_call(&m, METHOD_IMG2IMG, GRPC_STATUS_OK, REASON_NONE, 0.2);
    metrics_record_call(&m, METHOD_IMG2IMG, GRPC_STATUS_INVALID_ARGUMENT, REASON_INVALID_IMAGE,
                        0.001);
    metrics_record_images(&m, 3);
    metrics_observe_inference(&m, 7.0);
    metrics_gauges g = {.queue_length = 2, .queue_capacity = 8, .ready = true,
                        .resident_bytes = 1000, .weight_bytes = 5, .backend = "cpu"};
    size_t len;
    char *text = metrics_render(&m, &g, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    const char *expected[] = {
        "sdxl_requests_total{method=\"Img2Img\",code=\"OK\"} 1\n",
        "sdxl_requests_total{method=\"Img2Img\",code=\"INVALID_ARGUMENT\"} 1\n",
        "sdxl_errors_total{method=\"Img2Img\",reason=\"INVALID_IMAGE\"} 1\n",
        "sdxl_images_generated_total 3\n",
        "sdxl_request_duration_seconds_bucket{method=\"Img2Img\",le=\"0.005\"} 1\n",
        "sdxl_request_duration_seconds_bucket{method=\"Img2Img\",le=\"0.25\"} 2\n",
        "sdxl_request_duration_seconds_count{method=\"Img2Img\"} 2\n",
        "sdxl_inference_seconds_bucket{le=\"5\"} 0\n",
        "sdxl_inference_seconds_bucket{le=\"10\"} 1\n",
        "sdxl_inference_seconds_bucket{le=\"+Inf\"} 1\n",
        "sdxl_queue_length 2\n",
        "sdxl_model_weight_bytes{backend=\"cpu\"} 5\n",
        "# TYPE sdxl_queue_wait_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_non_null(strstr(text, expected[i]));
    uint64_t requests, failed, images;
    metrics_generation_totals(&m, &requests, &failed, &images);
    assert_int_equal(requests, 2);
    assert_int_equal(failed, 1);
    assert_int_equal(images, 3);
    free(text);
    metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_details_round_trip),
        cmocka_unit_test(reasons_and_engine_errors),
        cmocka_unit_test(request_defaults_and_resolved_size),
        cmocka_unit_test(every_bad_parameter_is_named),
        cmocka_unit_test(images_are_decoded_within_the_limits),
        cmocka_unit_test(reflection_index_of_the_served_protos),
        cmocka_unit_test(prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
