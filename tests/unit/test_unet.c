// needs: model_tiny-a model_tiny-b
/*
 * test_unet.c — the SDXL UNet against diffusers: every case of unet_tiny-{a,b}.safetensors
 * (UNet2DConditionModel on mkmodel's seed-1 tiny models, float32 CPU), run in an arena of
 * exactly the size unet_plan reports; batch rows equal to single runs bit for bit; the nearest
 * upsampling of odd sizes against torch's index tables; and the loader's refusal of doctored
 * copies of tiny-a, naming the first bad tensor in module order.
 *
 * Tolerance: relative L2 error ≤ 1e-4 per output (tests/golden/data/README.md). Both sides are
 * float32 but sum in different orders (OpenBLAS and our kernels vs torch's), through ~20
 * layers; the observed error is 1e-6 to 4e-6. A missing or misplaced term fails by orders of
 * magnitude, but a norm eps of 1e-5 instead of 1e-6 moves these unit-variance activations by
 * only ~1e-5: such constants are checked by reading diffusers' source, not by this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/unet.h"
#include "engine/unet_upsample.h"
#include "io/safetensors.h"
#include "support/backend_test.h"
#include "support/golden.h"
#include "support/paths.h"

#define UNET_REL_L2 1e-4
#define TEXT_TOKENS 77

static void check_ok(sdxl_status st, const sdxl_error *err)
{
    if (st != SDXL_OK)
        fail_msg("%s: %s", sdxl_status_name(st), err->message);
}

static unet *load_model(backend *be, const char *name)
{
    char dir[1024];
    test_model_dir(name, dir, sizeof dir);
    unet *u = NULL;
    sdxl_error err;
    check_ok(unet_load(dir, be, &u, NULL, &err), &err);
    return u;
}

/* [n, c, h, w] -> [n, h, w, c] when to_nhwc, else back; d is the NCHW shape. */
static float *permute_channels(const float *x, const int64_t *d, bool to_nhwc)
{
    int64_t n = d[0], c = d[1], h = d[2], w = d[3];
    float *y = malloc((size_t)(n * c * h * w) * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t p = 0; p < h * w; p++) {
                int64_t nchw = (i * c + k) * h * w + p, nhwc = (i * h * w + p) * c + k;
                y[to_nhwc ? nhwc : nchw] = x[to_nhwc ? nchw : nhwc];
            }
    return y;
}

/* The inputs of one golden case (host, NHWC latents) and its expected output (NCHW). */
typedef struct unet_case {
    int64_t dims[4]; /* B, C, h, w of the latents */
    float timestep;
    float *latents; /* NHWC */
    float *text, *pooled, *time_ids, *want;
    int64_t text_dims[3], pooled_dim;
} unet_case;

static float *get(golden *g, const char *c, const char *field, golden_shape *s)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", c, field);
    float *x = NULL;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_get(g, name, s, &x, &err), err);
    return x;
}

static void case_read(golden *g, const char *c, unet_case *k)
{
    golden_shape s;
    float *latents = get(g, c, "latents", &s);
    assert_int_equal(s.ndim, 4);
    memcpy(k->dims, s.dims, sizeof k->dims);
    k->latents = permute_channels(latents, k->dims, true);
    free(latents);
    float *t = get(g, c, "timestep", &s);
    k->timestep = t[0];
    free(t);
    k->text = get(g, c, "prompt_embeds", &s);
    assert_int_equal(s.ndim, 3);
    memcpy(k->text_dims, s.dims, sizeof k->text_dims);
    k->pooled = get(g, c, "text_embeds", &s);
    k->pooled_dim = s.dims[1];
    k->time_ids = get(g, c, "time_ids", &s);
    k->want = get(g, c, "out", &s);
}

static void case_free(unet_case *k)
{
    free(k->latents);
    free(k->text);
    free(k->pooled);
    free(k->time_ids);
    free(k->want);
}

/* Runs images first..first+count-1 of a case in an arena of exactly the inputs' size plus
 * unet_plan's answer; returns the output, NHWC (caller frees). */
static float *run_rows(unet *u, backend *be, const unet_case *k, int64_t first, int64_t count)
{
    int64_t c = k->dims[1], h = k->dims[2], w = k->dims[3], t = k->text_dims[1];
    int64_t d = k->text_dims[2], p = k->pooled_dim, oc = u->cfg.out_channels;
    sdxl_error err;
    size_t plan;
    check_ok(unet_plan(u, be, count, h, w, t, &plan, &err), &err);
    size_t inputs =
        sizeof(float) * (size_t)(1 + count * (h * w * c + t * d + p + 6 + h * w * oc));
    arena a;
    bt_arena(&a, inputs + 6 * TENSOR_ALIGN + plan);

    tensor timestep = bt_input(be, &a, 1, (int64_t[]){1}, &k->timestep);
    tensor latents =
        bt_input(be, &a, 4, (int64_t[]){count, h, w, c}, k->latents + first * h * w * c);
    tensor text = bt_input(be, &a, 3, (int64_t[]){count, t, d}, k->text + first * t * d);
    tensor pooled = bt_input(be, &a, 2, (int64_t[]){count, p}, k->pooled + first * p);
    tensor ids = bt_input(be, &a, 2, (int64_t[]){count, 6}, k->time_ids + first * 6);
    tensor out = bt_output(be, &a, 4, (int64_t[]){count, h, w, oc});
    arena_mark mark = arena_get_mark(&a);
    check_ok(unet_forward(u, be, &a, &latents, &timestep, &text, &pooled, &ids, &out, &err),
             &err);
    assert_int_equal(arena_get_mark(&a), mark); /* every temporary released */
    assert_true(arena_peak(&a) - mark <= plan);
    float *y = bt_read(be, &out);
    arena_free(&a);
    return y;
}

static void check_model(const char *model)
{
    backend *be = bt_backend("cpu", 2);
    unet *u = load_model(be, model);
    char file[64];
    snprintf(file, sizeof file, "unet_%s.safetensors", model);
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, file, &err), err);
    /* The cases the README promises: batch 1 and 2, square and non-square latents. */
    assert_true(golden_has(&g, "b1_8x8.out"));
    assert_true(golden_has(&g, "b2_8x12.out"));
    assert_true(golden_has(&g, "b2_8x8.out"));
    /* Every case in the file, so one added later is checked too. */
    int cases = 0;
    for (size_t i = 0; i < g.st.n_tensors; i++) {
        const char *name = g.st.tensors[i].name, *dot = strrchr(name, '.');
        if (!dot || strcmp(dot, ".out"))
            continue;
        char c[64];
        snprintf(c, sizeof c, "%.*s", (int)(dot - name), name);
        unet_case k;
        case_read(&g, c, &k);
        float *got_nhwc = run_rows(u, be, &k, 0, k.dims[0]);
        int64_t out_dims[4] = {k.dims[0], u->cfg.out_channels, k.dims[2], k.dims[3]};
        float *got = permute_channels(got_nhwc, out_dims, false);
        char label[128];
        snprintf(label, sizeof label, "%s %s", model, c);
        size_t n = (size_t)(out_dims[0] * out_dims[1] * out_dims[2] * out_dims[3]);
        GOLDEN_ASSERT_CLOSE(label, got, k.want, n, INFINITY, UNET_REL_L2);
        free(got);
        free(got_nhwc);
        case_free(&k);
        cases++;
    }
    assert_true(cases >= 3);
    golden_close(&g);
    unet_free(u);
    backend_destroy(be);
}

static void unet_matches_diffusers_tiny_a(void **state)
{
    (void)state;
    check_model("tiny-a");
}

static void unet_matches_diffusers_tiny_b(void **state)
{
    (void)state;
    check_model("tiny-b");
}

/* Each image of a batch gets exactly the bits it gets alone (what lets a batch of seeds
 * s, s+1, ... reproduce single runs). */
static void unet_batch_rows_equal_single_runs(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    unet *u = load_model(be, "tiny-b");
    golden g;
    sdxl_error err;
    GOLDEN_ASSERT_OK(golden_open(&g, "unet_tiny-b.safetensors", &err), err);
    unet_case k;
    case_read(&g, "b2_8x12", &k);
    assert_int_equal(k.dims[0], 2);
    float *both = run_rows(u, be, &k, 0, 2);
    size_t per = (size_t)(k.dims[2] * k.dims[3] * u->cfg.out_channels);
    for (int64_t i = 0; i < 2; i++) {
        float *one = run_rows(u, be, &k, i, 1);
        assert_memory_equal(one, both + (size_t)i * per, per * sizeof(float));
        free(one);
    }
    free(both);
    case_free(&k);
    golden_close(&g);
    unet_free(u);
    backend_destroy(be);
}

/* An arena smaller than the plan says is refused with SDXL_ERR_OUT_OF_MEMORY, not overrun. */
static void unet_refuses_an_arena_below_the_plan(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 2);
    unet *u = load_model(be, "tiny-a");
    sdxl_error err;
    int64_t b = 1, h = 8, w = 8;
    size_t plan;
    check_ok(unet_plan(u, be, b, h, w, TEXT_TOKENS, &plan, &err), &err);
    size_t plan_big;
    check_ok(unet_plan(u, be, 2 * b, 2 * h, 2 * w, TEXT_TOKENS, &plan_big, &err), &err);
    assert_true(plan_big > 4 * plan); /* activations scale with batch × pixels */

    arena a;
    bt_arena(&a, 64 * 1024 + plan / 2);
    int64_t c = u->cfg.in_channels, d = u->cfg.cross_attention_dim;
    float *zeros = calloc((size_t)(TEXT_TOKENS * d), sizeof(float));
    assert_non_null(zeros);
    float one = 1.0f;
    tensor timestep = bt_input(be, &a, 1, (int64_t[]){1}, &one);
    tensor latents = bt_input(be, &a, 4, (int64_t[]){b, h, w, c}, zeros);
    tensor text = bt_input(be, &a, 3, (int64_t[]){b, TEXT_TOKENS, d}, zeros);
    tensor pooled = bt_input(be, &a, 2, (int64_t[]){b, u->pooled_dim}, zeros);
    tensor ids = bt_input(be, &a, 2, (int64_t[]){b, 6}, zeros);
    tensor out = bt_output(be, &a, 4, (int64_t[]){b, h, w, u->cfg.out_channels});
    arena_mark mark = arena_get_mark(&a);
    assert_int_equal(unet_forward(u, be, &a, &latents, &timestep, &text, &pooled, &ids, &out, &err),
                     SDXL_ERR_OUT_OF_MEMORY);
    assert_int_equal(arena_get_mark(&a), mark);

    /* and a wrongly shaped input is named */
    tensor bad_pooled = bt_input(be, &a, 2, (int64_t[]){b, 3}, zeros);
    assert_int_equal(unet_forward(u, be, &a, &latents, &timestep, &text, &bad_pooled, &ids, &out, &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "pooled"));
    tensor bad_timestep = bt_input(be, &a, 1, (int64_t[]){2}, zeros);
    assert_int_equal(unet_forward(u, be, &a, &latents, &bad_timestep, &text, &pooled, &ids, &out,
                                  &err),
                     SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "timestep"));
    free(zeros);
    arena_free(&a);
    unet_free(u);
    backend_destroy(be);
}

/* torch.nn.functional.interpolate(size=(o,), mode="nearest") source indices, from torch 2.5.1:
 * the UNet's odd-size cases (17 → 33 after a 33 → 17 downsampling) and two general ones. */
typedef struct axis_map {
    int in, out;
    int src[16];
} axis_map;

static const axis_map torch_nearest[] = {
    {3, 5, {0, 0, 1, 1, 2}},
    {5, 9, {0, 0, 1, 1, 2, 2, 3, 3, 4}},
    {7, 10, {0, 0, 1, 2, 2, 3, 4, 4, 5, 6}},
    {6, 13, {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
    {4, 8, {0, 0, 1, 1, 2, 2, 3, 3}},
};

static void upsample_case(backend *be, const axis_map *ay, const axis_map *ax)
{
    int64_t n = 2, c = 3, h = ay->in, w = ax->in, ho = ay->out, wo = ax->out;
    float *x = malloc((size_t)(n * h * w * c) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n * h * w * c; i++)
        x[i] = (float)i;
    arena a;
    bt_arena(&a, 1 << 20);
    tensor tx = bt_input(be, &a, 4, (int64_t[]){n, h, w, c}, x);
    tensor ty = bt_output(be, &a, 4, (int64_t[]){n, ho, wo, c});
    sdxl_error err;
    check_ok(unet_upsample_nearest(be, &a, &tx, &ty, &err), &err);
    float *y = bt_read(be, &ty);
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < ho; i++)
            for (int64_t j = 0; j < wo; j++)
                for (int64_t k = 0; k < c; k++) {
                    float want = x[((b * h + ay->src[i]) * w + ax->src[j]) * c + k];
                    float got = y[((b * ho + i) * wo + j) * c + k];
                    if (got != want)
                        fail_msg("upsample %dx%d -> %dx%d: y[%lld, %lld, %lld, %lld] = %g, torch "
                                 "gives %g",
                                 ay->in, ax->in, ay->out, ax->out, (long long)b, (long long)i,
                                 (long long)j, (long long)k, (double)got, (double)want);
                }
    free(y);
    free(x);
    arena_free(&a);
}

static void upsample_to_size_matches_torch(void **state)
{
    (void)state;
    backend *be = bt_backend("cpu", 1);
    size_t m = sizeof torch_nearest / sizeof torch_nearest[0];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            upsample_case(be, &torch_nearest[i], &torch_nearest[j]);
    backend_destroy(be);
}

/* ---- loader refusals, on doctored copies of tiny-a ---- */

typedef struct doctor {
    const char *drop[2];     /* tensors left out */
    const char *reshape;     /* tensor given another shape with the same element count */
    const char *add;         /* an extra tensor of 4 floats */
} doctor;

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Writes ROOT/unet/{config.json, diffusion_pytorch_model.safetensors}: tiny-a's, doctored. */
static void write_doctored(const char *root, const doctor *d)
{
    char src[1024], path[1200];
    test_model_dir("tiny-a", src, sizeof src);
    char from[1200];
    snprintf(path, sizeof path, "%s/unet", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(from, sizeof from, "%s/unet/config.json", src);
    snprintf(path, sizeof path, "%s/unet/config.json", root);
    copy_file(from, path);

    snprintf(from, sizeof from, "%s/unet/diffusion_pytorch_model.safetensors", src);
    safetensors_file f;
    sdxl_error err;
    check_ok(safetensors_open(&f, from, &err), &err);
    st_tensor_info *info = calloc(f.n_tensors + 1, sizeof *info);
    const void **data = calloc(f.n_tensors + 1, sizeof *data);
    assert_non_null(info);
    assert_non_null(data);
    size_t n = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if ((d->drop[0] && !strcmp(t->name, d->drop[0])) ||
            (d->drop[1] && !strcmp(t->name, d->drop[1])))
            continue;
        info[n] = (st_tensor_info){.name = t->name, .type = t->type, .ndim = t->ndim};
        memcpy(info[n].shape, t->shape, sizeof t->shape);
        if (d->reshape && !strcmp(t->name, d->reshape)) { /* [a, b, ...] -> [a * b, ...] */
            assert_true(t->ndim >= 2);
            info[n].shape[0] = t->shape[0] * t->shape[1];
            for (int k = 1; k < t->ndim - 1; k++)
                info[n].shape[k] = t->shape[k + 1];
            info[n].ndim = t->ndim - 1;
        }
        data[n++] = t->data;
    }
    static const float extra[4] = {1, 2, 3, 4};
    if (d->add) {
        info[n] = (st_tensor_info){.name = d->add, .type = DTYPE_F32, .ndim = 1, .shape = {4}};
        data[n++] = extra;
    }
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", root);
    check_ok(safetensors_write_file(path, info, data, n, NULL, &err), &err);
    free(info);
    free(data);
    safetensors_close(&f);
}

static void remove_doctored(const char *root)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/unet/diffusion_pytorch_model.safetensors", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/unet/config.json", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/unet", root);
    rmdir(path);
    rmdir(root);
}

/* Loads a doctored tiny-a: must fail with `code` and a message naming `named`. */
static void expect_refusal(const doctor *d, sdxl_status code, const char *named)
{
    char root[1024];
    assert_int_equal(test_make_temp_dir(root, sizeof root), SDXL_OK);
    write_doctored(root, d);
    backend *be = bt_backend("cpu", 1);
    unet *u = (unet *)1;
    sdxl_error err;
    sdxl_status st = unet_load(root, be, &u, NULL, &err);
    printf("refused: %s\n", err.message);
    assert_int_equal(st, code);
    assert_null(u);
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", named);
    assert_non_null(strstr(err.message, quoted));
    backend_destroy(be);
    remove_doctored(root);
}

static void load_refuses_a_missing_tensor(void **state)
{
    (void)state;
    const char *name = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight";
    expect_refusal(&(doctor){.drop = {name}}, SDXL_ERR_NOT_FOUND, name);
}

/* Two missing: the error names the first in module order (down_blocks before conv_out),
 * not the first in the file's alphabetical listing. */
static void load_names_the_first_missing_tensor_in_module_order(void **state)
{
    (void)state;
    const char *first = "down_blocks.0.resnets.1.conv1.weight";
    expect_refusal(&(doctor){.drop = {"conv_out.bias", first}}, SDXL_ERR_NOT_FOUND, first);
}

static void load_refuses_a_misshapen_tensor(void **state)
{
    (void)state;
    const char *name = "mid_block.attentions.0.proj_out.weight";
    expect_refusal(&(doctor){.reshape = name}, SDXL_ERR_FORMAT, name);
}

static void load_refuses_an_unexpected_tensor(void **state)
{
    (void)state;
    const char *name = "up_blocks.0.attentions.0.transformer_blocks.0.attn3.to_q.weight";
    expect_refusal(&(doctor){.add = name}, SDXL_ERR_FORMAT, name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unet_matches_diffusers_tiny_a),
        cmocka_unit_test(unet_matches_diffusers_tiny_b),
        cmocka_unit_test(unet_batch_rows_equal_single_runs),
        cmocka_unit_test(unet_refuses_an_arena_below_the_plan),
        cmocka_unit_test(upsample_to_size_matches_torch),
        cmocka_unit_test(load_refuses_a_missing_tensor),
        cmocka_unit_test(load_names_the_first_missing_tensor_in_module_order),
        cmocka_unit_test(load_refuses_a_misshapen_tensor),
        cmocka_unit_test(load_refuses_an_unexpected_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
