/*
 * golden.c — golden files opened through the safetensors reader, tensors copied out in the
 * element type a test wants, and the error measures the tests report (see golden.h).
 *
 * Errors are measured in double so that the measure itself adds no error at fp32 tolerances.
 */
#include "support/golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/paths.h"

sdxl_status golden_open(golden *g, const char *file, sdxl_error *err)
{
    char path[1024];
    test_golden_path(file, path, sizeof path);
    sdxl_status st = safetensors_open(&g->st, path, err);
    if (st != SDXL_OK)
        return error_prefix(err, st,
                            "golden file %s (remake with tools/reference/make_goldens.py, see "
                            "tests/golden/data/README.md)",
                            file);
    return SDXL_OK;
}

sdxl_status golden_open_model(golden *g, const char *kind, const char *model, sdxl_error *err)
{
    char file[256];
    snprintf(file, sizeof file, "%s_%s.safetensors", kind, model);
    return golden_open(g, file, err);
}

void golden_close(golden *g)
{
    safetensors_close(&g->st);
}

bool golden_has(const golden *g, const char *name)
{
    return safetensors_find(&g->st, name) != NULL;
}

const char *golden_meta(const golden *g, const char *key)
{
    return safetensors_metadata(&g->st, key);
}

static sdxl_status find_tensor(const golden *g, const char *name, golden_shape *shape,
                               const st_tensor **out, sdxl_error *err)
{
    const st_tensor *t = safetensors_find(&g->st, name);
    if (!t)
        return error_set(err, SDXL_ERR_NOT_FOUND,
                         "golden file %s has no tensor %s (see tests/golden/data/README.md for "
                         "the names; remake the goldens if the schema changed)",
                         g->st.path, name);
    shape->ndim = t->ndim;
    for (int i = 0; i < SAFETENSORS_MAX_DIMS; i++)
        shape->dims[i] = i < t->ndim ? t->shape[i] : 0;
    shape->numel = t->numel;
    *out = t;
    return SDXL_OK;
}

static bool dtype_is_float(dtype t)
{
    return t == DTYPE_F32 || t == DTYPE_F16 || t == DTYPE_BF16 || t == DTYPE_F64;
}

/* Integer element i of an I64, I32 or U8 tensor (data may be unaligned). */
static int64_t int_at(const st_tensor *t, size_t i)
{
    const unsigned char *p = (const unsigned char *)t->data;
    switch (t->type) {
    case DTYPE_I64: {
        int64_t v;
        memcpy(&v, p + 8 * i, sizeof v);
        return v;
    }
    case DTYPE_I32: {
        int32_t v;
        memcpy(&v, p + 4 * i, sizeof v);
        return v;
    }
    default:
        return p[i];
    }
}

static sdxl_status alloc_elements(const golden *g, const char *name, size_t numel, size_t size,
                                  void **out, sdxl_error *err)
{
    /* malloc(0) may return NULL: every golden tensor has elements, but a bad file may not. */
    *out = malloc(numel ? numel * size : 1);
    if (!*out)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "golden file %s: tensor %s: %zu elements",
                         g->st.path, name, numel);
    return SDXL_OK;
}

sdxl_status golden_get(const golden *g, const char *name, golden_shape *shape, float **data,
                       sdxl_error *err)
{
    const st_tensor *t = NULL;
    sdxl_status st = find_tensor(g, name, shape, &t, err);
    if (st == SDXL_OK)
        st = alloc_elements(g, name, t->numel, sizeof(float), (void **)data, err);
    if (st != SDXL_OK)
        return st;
    if (dtype_is_float(t->type)) {
        dtype_to_f32(t->type, t->data, *data, t->numel);
    } else {
        for (size_t i = 0; i < t->numel; i++)
            (*data)[i] = (float)int_at(t, i);
    }
    return SDXL_OK;
}

sdxl_status golden_get_f64(const golden *g, const char *name, golden_shape *shape,
                           double **data, sdxl_error *err)
{
    const st_tensor *t = NULL;
    sdxl_status st = find_tensor(g, name, shape, &t, err);
    if (st == SDXL_OK)
        st = alloc_elements(g, name, t->numel, sizeof(double), (void **)data, err);
    if (st != SDXL_OK)
        return st;
    const unsigned char *p = (const unsigned char *)t->data;
    for (size_t i = 0; i < t->numel; i++) {
        if (t->type == DTYPE_F64) {
            memcpy(&(*data)[i], p + 8 * i, sizeof(double));
        } else if (dtype_is_float(t->type)) {
            float f;
            dtype_to_f32(t->type, p + dtype_size(t->type) * i, &f, 1);
            (*data)[i] = f;
        } else {
            (*data)[i] = (double)int_at(t, i);
        }
    }
    return SDXL_OK;
}

sdxl_status golden_get_i64(const golden *g, const char *name, golden_shape *shape,
                           int64_t **data, sdxl_error *err)
{
    const st_tensor *t = NULL;
    sdxl_status st = find_tensor(g, name, shape, &t, err);
    if (st != SDXL_OK)
        return st;
    if (dtype_is_float(t->type))
        return error_set(err, SDXL_ERR_FORMAT,
                         "golden file %s: tensor %s is %s, not an integer tensor (use golden_get)",
                         g->st.path, name, dtype_name(t->type));
    st = alloc_elements(g, name, t->numel, sizeof(int64_t), (void **)data, err);
    if (st != SDXL_OK)
        return st;
    for (size_t i = 0; i < t->numel; i++)
        (*data)[i] = int_at(t, i);
    return SDXL_OK;
}

bool golden_shape_is(const golden_shape *shape, int ndim, const int64_t *dims)
{
    if (shape->ndim != ndim)
        return false;
    for (int i = 0; i < ndim; i++) {
        if (shape->dims[i] != dims[i])
            return false;
    }
    return true;
}

bool golden_compare(const char *label, const float *actual, const float *expected, size_t n,
                    double max_abs, double max_rel_l2)
{
    double worst = 0.0, diff_sq = 0.0, ref_sq = 0.0;
    size_t worst_i = 0;
    bool bad_value = false; /* a NaN or infinity that the expected value does not have */
    for (size_t i = 0; i < n; i++) {
        double a = actual[i], e = expected[i];
        double d;
        if (isfinite(a) && isfinite(e)) {
            d = fabs(a - e);
            diff_sq += d * d;
            ref_sq += e * e;
        } else {
            bool same = (isnan(a) && isnan(e)) || a == e;
            d = same ? 0.0 : INFINITY;
            bad_value = bad_value || !same;
        }
        if (d > worst) { /* strict: the first index of the largest error */
            worst = d;
            worst_i = i;
        }
    }
    double rel = ref_sq > 0.0 ? sqrt(diff_sq / ref_sq) : (diff_sq > 0.0 ? INFINITY : 0.0);
    bool ok = !bad_value && worst <= max_abs && rel <= max_rel_l2;
    printf("%s %s: n=%zu max_abs_err=%.3g at [%zu] (actual %.9g, expected %.9g) rel_l2_err=%.3g "
           "(tolerance max_abs %.3g, rel_l2 %.3g)\n",
           ok ? "ok  " : "FAIL", label, n, worst, n ? worst_i : 0, n ? (double)actual[worst_i] : 0.0,
           n ? (double)expected[worst_i] : 0.0, rel, max_abs, max_rel_l2);
    return ok;
}

bool golden_compare_i64(const char *label, const int64_t *actual, const int64_t *expected,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (actual[i] != expected[i]) {
            printf("FAIL %s: n=%zu first mismatch at [%zu]: actual %lld, expected %lld\n", label, n,
                   i, (long long)actual[i], (long long)expected[i]);
            return false;
        }
    }
    printf("ok   %s: n=%zu all equal\n", label, n);
    return true;
}
