/*
 * component.c — one component's weights as a streamed safetensors file (see component.h).
 *
 * Two passes over the tensor list: the first collects names, shapes and kinds (the writer
 * needs the whole header first), the second is a loop over the collected tensors that
 * generates, converts and writes CHUNK elements at a time.
 */
#include "component.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "random_weights.h"

#define CHUNK ((size_t)1 << 16)

typedef struct collected {
    st_tensor_info *infos;
    model_tensor_kind *kinds;
    char (*names)[MODEL_TENSOR_MAX_NAME];
    size_t n, cap;
} collected;

static sdxl_status collect_tensor(void *ctx, const model_tensor *t, sdxl_error *err)
{
    collected *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        st_tensor_info *infos = realloc(c->infos, cap * sizeof *infos);
        if (infos)
            c->infos = infos;
        model_tensor_kind *kinds = realloc(c->kinds, cap * sizeof *kinds);
        if (kinds)
            c->kinds = kinds;
        char(*names)[MODEL_TENSOR_MAX_NAME] = realloc(c->names, cap * sizeof *names);
        if (names)
            c->names = names;
        if (!infos || !kinds || !names)
            return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "out of memory listing %zu tensors",
                             cap);
        c->cap = cap;
    }
    snprintf(c->names[c->n], MODEL_TENSOR_MAX_NAME, "%s", t->name);
    st_tensor_info *info = &c->infos[c->n];
    memset(info, 0, sizeof *info);
    info->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++)
        info->shape[i] = t->shape[i];
    c->kinds[c->n] = t->kind;
    c->n++;
    return SDXL_OK;
}

static void collected_free(collected *c)
{
    free(c->infos);
    free(c->kinds);
    free(c->names);
}

/* Generates and writes every element of tensor i. */
static sdxl_status write_tensor(safetensors_writer *w, const collected *c, size_t i,
                                const char *component, uint64_t seed, float *values, void *raw,
                                sdxl_error *err)
{
    model_tensor t = {.name = c->names[i], .kind = c->kinds[i], .ndim = c->infos[i].ndim};
    memcpy(t.shape, c->infos[i].shape, sizeof t.shape);
    random_weights stream;
    random_weights_init(&stream, seed, component, &t);
    uint64_t numel = (uint64_t)model_tensor_numel(&t);
    size_t elem = dtype_size(c->infos[i].type);
    for (uint64_t done = 0; done < numel;) {
        size_t n = numel - done < CHUNK ? (size_t)(numel - done) : CHUNK;
        random_weights_fill(&stream, done, values, n);
        dtype_from_f32(c->infos[i].type, values, raw, n);
        sdxl_status st = safetensors_writer_write(w, raw, n * elem, err);
        if (st)
            return st;
        done += n;
    }
    return SDXL_OK;
}

sdxl_status component_write(const char *path, const char *component, component_list_fn list,
                            const void *cfg, uint64_t seed, dtype type, component_stats *stats,
                            sdxl_error *err)
{
    collected c = {0};
    sdxl_status st = list(cfg, collect_tensor, &c, err);
    float *values = malloc(CHUNK * sizeof *values);
    void *raw = malloc(CHUNK * sizeof(float));
    if (!st && (!values || !raw))
        st = error_set(err, SDXL_ERR_OUT_OF_MEMORY, "out of memory for a %zu-element buffer",
                       CHUNK);
    memset(stats, 0, sizeof *stats);
    for (size_t i = 0; !st && i < c.n; i++) {
        c.infos[i].name = c.names[i];
        c.infos[i].type = type;
        model_tensor t = {.ndim = c.infos[i].ndim};
        memcpy(t.shape, c.infos[i].shape, sizeof t.shape);
        stats->n_params += (uint64_t)model_tensor_numel(&t);
    }
    stats->n_tensors = c.n;
    stats->n_bytes = stats->n_params * dtype_size(type);

    safetensors_writer w;
    const char *metadata[] = {"format", "pt", NULL};
    if (!st)
        st = safetensors_writer_open(&w, path, c.infos, c.n, metadata, err);
    if (!st) {
        for (size_t i = 0; !st && i < c.n; i++)
            st = write_tensor(&w, &c, i, component, seed, values, raw, err);
        if (!st)
            st = safetensors_writer_close(&w, err);
        else
            safetensors_writer_abort(&w);
    }
    free(values);
    free(raw);
    collected_free(&c);
    return st;
}
