/*
 * unet.c — the UNet's forward pass and its activation plan (see unet.h), following diffusers'
 * UNet2DConditionModel.forward and the SDXL blocks of unet_2d_blocks.py.
 *
 * Arena layout during a call, bottom to top:
 *   emb · the skip connections, pushed by the down path in order · two "ping-pong" buffers ·
 *   the temporaries of the block running now.
 * The down path's outputs are all skips, so they stay; the up path consumes the skips but they
 * lie below its own outputs, so instead of growing the arena with every output it alternates
 * between two buffers sized for its largest tensor; each block's temporaries are released
 * (arena marks) as soon as the block is done.
 */
#include "engine/unet.h"

#include "engine/unet_upsample.h"

/* conv_in's output, then every resnet (or attention) output and every downsampler output. */
#define UNET_MAX_SKIPS (UNET_MAX_BLOCKS * (UNET_MAX_LAYERS + 1) + 1)

/* diffusers' Timesteps: get_timestep_embedding's default max_period. */
#define UNET_MAX_PERIOD 10000.0f

/* The UNet always sees exactly 6 time ids: original size, crop corner, target size. */
#define UNET_TIME_IDS 6

typedef struct skip_stack {
    tensor t[UNET_MAX_SKIPS];
    int n;
} skip_stack;

/* Two flat buffers; each take returns a view of the one the previous take did not return, so
 * an op's output never overlaps its input (the previous op's output). */
typedef struct pingpong {
    tensor buf[2];
    int next;
} pingpong;

static sdxl_status pingpong_take(pingpong *pp, int64_t n, int64_t h, int64_t w, int64_t c,
                                 tensor *out, sdxl_error *err)
{
    tensor flat;
    SDXL_TRY(tensor_view_outer(&flat, &pp->buf[pp->next], 0, n * h * w * c, err));
    pp->next ^= 1;
    return tensor_reshape(out, &flat, 4, (int64_t[]){n, h, w, c}, err);
}

/* Spatial size of every level: a 3×3 stride-2 conv with padding 1 gives ceil(side / 2). */
typedef struct level_sizes {
    int64_t h[UNET_MAX_BLOCKS], w[UNET_MAX_BLOCKS];
} level_sizes;

static level_sizes sizes_of(const unet_config *cfg, int64_t h, int64_t w)
{
    level_sizes s;
    for (int i = 0; i < cfg->n_blocks; i++) {
        s.h[i] = h;
        s.w[i] = w;
        h = (h - 1) / 2 + 1;
        w = (w - 1) / 2 + 1;
    }
    return s;
}

static const conv2d_params conv_same = {1, 1, 1, 1, 1};
static const conv2d_params conv_down = {2, 1, 1, 1, 1};

/* emb [B, temb] = time_embedding(sinusoids(t)) + add_embedding([pooled, sinusoids(time ids)]).
 * The timestep is one value for the batch, so its MLP runs on one row and is added to every
 * image's row (each row of a batched product is computed as it would be alone). */
static sdxl_status time_embedding(const unet *u, backend *be, arena *a, const tensor *timestep,
                                  const tensor *pooled, const tensor *time_ids, tensor *emb,
                                  sdxl_error *err)
{
    const unet_config *cfg = &u->cfg;
    dtype type = backend_compute_type(be);
    int64_t b = emb->shape[0], temb = cfg->time_embed_dim, c0 = cfg->block_out_channels[0];
    int64_t d = cfg->addition_time_embed_dim;
    float shift = (float)cfg->freq_shift;
    tensor t_sin, t_hidden, t_emb, ids, ids_sin, cond, cond_hidden;

    SDXL_TRY(tensor_alloc(&t_sin, a, type, 2, (int64_t[]){1, c0}, err));
    SDXL_TRY(backend_timestep_embedding(be, timestep, cfg->flip_sin_to_cos, shift, UNET_MAX_PERIOD,
                                        &t_sin, err));
    SDXL_TRY(tensor_alloc(&t_hidden, a, type, 2, (int64_t[]){1, temb}, err));
    SDXL_TRY(backend_linear(be, &t_sin, &u->time_1_w, &u->time_1_b, BACKEND_ACT_SILU, &t_hidden,
                            err));
    SDXL_TRY(tensor_alloc(&t_emb, a, type, 2, (int64_t[]){1, temb}, err));
    SDXL_TRY(backend_linear(be, &t_hidden, &u->time_2_w, &u->time_2_b, BACKEND_ACT_NONE, &t_emb,
                            err));

    /* add_time_proj(time_ids.flatten()).reshape(B, -1), after the pooled embedding */
    SDXL_TRY(tensor_reshape(&ids, time_ids, 1, (int64_t[]){b * UNET_TIME_IDS}, err));
    SDXL_TRY(tensor_alloc(&ids_sin, a, type, 2, (int64_t[]){b * UNET_TIME_IDS, d}, err));
    SDXL_TRY(backend_timestep_embedding(be, &ids, cfg->flip_sin_to_cos, shift, UNET_MAX_PERIOD,
                                        &ids_sin, err));
    SDXL_TRY(tensor_reshape(&ids_sin, &ids_sin, 2, (int64_t[]){b, UNET_TIME_IDS * d}, err));
    SDXL_TRY(tensor_alloc(&cond, a, type, 2,
                          (int64_t[]){b, cfg->projection_class_embeddings_input_dim}, err));
    SDXL_TRY(backend_concat_channels(be, pooled, &ids_sin, &cond, err));
    SDXL_TRY(tensor_alloc(&cond_hidden, a, type, 2, (int64_t[]){b, temb}, err));
    SDXL_TRY(backend_linear(be, &cond, &u->add_1_w, &u->add_1_b, BACKEND_ACT_SILU, &cond_hidden,
                            err));
    SDXL_TRY(backend_linear(be, &cond_hidden, &u->add_2_w, &u->add_2_b, BACKEND_ACT_NONE, emb,
                            err));
    SDXL_TRY(tensor_reshape(&t_emb, &t_emb, 1, &temb, err)); // [temb], added to every row
    return backend_add(be, emb, &t_emb, emb, err);
}

/* Down block i: every resnet (+ attention) output and the downsampler's are pushed. */
static sdxl_status down_block(const unet *u, int i, backend *be, arena *a, const tensor *emb,
                              const tensor *text, skip_stack *s, sdxl_error *err)
{
    const unet_block *blk = &u->down[i];
    dtype type = backend_compute_type(be);
    int64_t c = u->cfg.block_out_channels[i];
    for (int j = 0; j < blk->n_layers; j++) {
        const tensor *h = &s->t[s->n - 1];
        tensor out;
        SDXL_TRY(tensor_alloc(&out, a, type, 4,
                              (int64_t[]){h->shape[0], h->shape[1], h->shape[2], c}, err));
        if (blk->attentions) {
            arena_mark mark = arena_get_mark(a);
            tensor r;
            SDXL_TRY(tensor_alloc_like(&r, a, &out, err));
            SDXL_TRY(resnet_forward(&blk->resnets[j], be, a, h, emb, &r, err));
            SDXL_TRY(transformer_forward(&blk->attentions[j], be, a, &r, text, &out, err));
            arena_reset_to(a, mark);
        } else {
            SDXL_TRY(resnet_forward(&blk->resnets[j], be, a, h, emb, &out, err));
        }
        s->t[s->n++] = out;
    }
    if (blk->resample) {
        const tensor *h = &s->t[s->n - 1];
        tensor out;
        SDXL_TRY(tensor_alloc(&out, a, type, 4,
                              (int64_t[]){h->shape[0], (h->shape[1] - 1) / 2 + 1,
                                          (h->shape[2] - 1) / 2 + 1, c},
                              err));
        SDXL_TRY(backend_conv2d(be, h, &blk->resample_w, &blk->resample_b, &conv_down, &out, err));
        s->t[s->n++] = out;
    }
    return SDXL_OK;
}

/* resnet, transformer, resnet: h [B, H, W, C] -> out [B, H, W, C]. */
static sdxl_status mid_block(const unet *u, backend *be, arena *a, const tensor *h,
                             const tensor *emb, const tensor *text, tensor *out, sdxl_error *err)
{
    tensor r, t;
    SDXL_TRY(tensor_alloc_like(&r, a, h, err));
    SDXL_TRY(tensor_alloc_like(&t, a, h, err));
    SDXL_TRY(resnet_forward(&u->mid_resnets[0], be, a, h, emb, &r, err));
    SDXL_TRY(transformer_forward(&u->mid_attention, be, a, &r, text, &t, err));
    return resnet_forward(&u->mid_resnets[1], be, a, &t, emb, out, err);
}

/* Up block i: each resnet takes h concatenated with the top skip; then the upsampler goes to
 * the size of the skip the next block starts with. h is replaced by the block's output. */
static sdxl_status up_block(const unet *u, int i, backend *be, arena *a, const tensor *emb,
                            const tensor *text, skip_stack *s, pingpong *pp, tensor *h,
                            sdxl_error *err)
{
    const unet_block *blk = &u->up[i];
    dtype type = backend_compute_type(be);
    int64_t b = h->shape[0], c = u->cfg.block_out_channels[u->cfg.n_blocks - 1 - i];
    for (int j = 0; j < blk->n_layers; j++) {
        const tensor *skip = &s->t[--s->n];
        int64_t hh = h->shape[1], ww = h->shape[2];
        tensor out;
        SDXL_TRY(pingpong_take(pp, b, hh, ww, c, &out, err));
        arena_mark mark = arena_get_mark(a);
        tensor cat;
        SDXL_TRY(tensor_alloc(&cat, a, type, 4,
                              (int64_t[]){b, hh, ww, h->shape[3] + skip->shape[3]}, err));
        SDXL_TRY(backend_concat_channels(be, h, skip, &cat, err));
        SDXL_TRY(resnet_forward(&blk->resnets[j], be, a, &cat, emb, &out, err));
        arena_reset_to(a, mark);
        *h = out;
        if (blk->attentions) {
            SDXL_TRY(pingpong_take(pp, b, hh, ww, c, &out, err));
            SDXL_TRY(transformer_forward(&blk->attentions[j], be, a, h, text, &out, err));
            *h = out;
        }
    }
    if (blk->resample) {
        const tensor *next_skip = &s->t[s->n - 1];
        tensor up, out;
        SDXL_TRY(pingpong_take(pp, b, next_skip->shape[1], next_skip->shape[2], c, &up, err));
        SDXL_TRY(unet_upsample_nearest(be, a, h, &up, err));
        SDXL_TRY(pingpong_take(pp, b, next_skip->shape[1], next_skip->shape[2], c, &out, err));
        SDXL_TRY(backend_conv2d(be, &up, &blk->resample_w, &blk->resample_b, &conv_same, &out,
                                err));
        *h = out;
    }
    return SDXL_OK;
}

/* The largest tensor of the up path (and the mid block's output), in elements. */
static int64_t up_path_numel(const unet_config *cfg, const level_sizes *ls, int64_t b)
{
    int64_t most = 0;
    for (int level = 0; level < cfg->n_blocks; level++) {
        int64_t c = cfg->block_out_channels[level];
        int64_t here = b * ls->h[level] * ls->w[level] * c;
        /* an upsampler at this level writes the finer level's size */
        int64_t up = level > 0 ? b * ls->h[level - 1] * ls->w[level - 1] * c : 0;
        most = here > most ? here : most;
        most = up > most ? up : most;
    }
    return most;
}

static sdxl_status forward(const unet *u, backend *be, arena *a, const tensor *latents,
                           const tensor *timestep, const tensor *text, const tensor *pooled,
                           const tensor *time_ids, tensor *out, sdxl_error *err)
{
    const unet_config *cfg = &u->cfg;
    dtype type = backend_compute_type(be);
    int n = cfg->n_blocks;
    int64_t b = latents->shape[0], c0 = cfg->block_out_channels[0];
    level_sizes ls = sizes_of(cfg, latents->shape[1], latents->shape[2]);

    tensor emb; // [B, temb], used by every resnet
    SDXL_TRY(tensor_alloc(&emb, a, type, 2, (int64_t[]){b, cfg->time_embed_dim}, err));
    arena_mark mark = arena_get_mark(a);
    SDXL_TRY(time_embedding(u, be, a, timestep, pooled, time_ids, &emb, err));
    arena_reset_to(a, mark);

    skip_stack s;
    s.n = 0;
    SDXL_TRY(tensor_alloc(&s.t[0], a, type, 4, (int64_t[]){b, ls.h[0], ls.w[0], c0}, err));
    SDXL_TRY(backend_conv2d(be, latents, &u->conv_in_w, &u->conv_in_b, &conv_same, &s.t[0], err));
    s.n = 1;
    for (int i = 0; i < n; i++)
        SDXL_TRY(down_block(u, i, be, a, &emb, text, &s, err));

    pingpong pp = {.next = 0};
    int64_t most = up_path_numel(cfg, &ls, b);
    SDXL_TRY(tensor_alloc(&pp.buf[0], a, type, 1, &most, err));
    SDXL_TRY(tensor_alloc(&pp.buf[1], a, type, 1, &most, err));
    mark = arena_get_mark(a);

    tensor h;
    SDXL_TRY(pingpong_take(&pp, b, ls.h[n - 1], ls.w[n - 1], cfg->block_out_channels[n - 1], &h,
                           err));
    SDXL_TRY(mid_block(u, be, a, &s.t[s.n - 1], &emb, text, &h, err));
    arena_reset_to(a, mark);
    for (int i = 0; i < n; i++)
        SDXL_TRY(up_block(u, i, be, a, &emb, text, &s, &pp, &h, err));

    tensor act; // [B, h, w, c0]: SiLU(conv_norm_out(h))
    SDXL_TRY(tensor_alloc_like(&act, a, &h, err));
    SDXL_TRY(backend_group_norm(be, &h, cfg->norm_num_groups, cfg->norm_eps, &u->norm_out_w,
                                &u->norm_out_b, true, &act, err));
    return backend_conv2d(be, &act, &u->conv_out_w, &u->conv_out_b, &conv_same, out, err);
}

/* Every input's shape against the config and the latents' batch, with a message that names
 * the argument (the backend would only name an op deep inside the network). */
static sdxl_status check_inputs(const unet *u, const tensor *latents, const tensor *timestep,
                                const tensor *text, const tensor *pooled,
                                const tensor *time_ids, const tensor *out, sdxl_error *err)
{
    const unet_config *cfg = &u->cfg;
    char s[96];
    if (latents->ndim != 4 || latents->shape[3] != cfg->in_channels)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "unet: latents %s must be [B, h, w, %d]",
                         tensor_shape_str(latents, s, sizeof s), cfg->in_channels);
    int64_t b = latents->shape[0];
    if (timestep->ndim != 1 || timestep->shape[0] != 1 || timestep->type != DTYPE_F32)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "unet: timestep %s must be F32 [1]",
                         tensor_shape_str(timestep, s, sizeof s));
    if (text->ndim != 3 || text->shape[0] != b || text->shape[2] != cfg->cross_attention_dim)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "unet: text embeddings %s must be [%lld, T, %d]",
                         tensor_shape_str(text, s, sizeof s), (long long)b,
                         cfg->cross_attention_dim);
    if (pooled->ndim != 2 || pooled->shape[0] != b || pooled->shape[1] != u->pooled_dim)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "unet: pooled text embedding %s must be [%lld, %d]",
                         tensor_shape_str(pooled, s, sizeof s), (long long)b, u->pooled_dim);
    if (time_ids->ndim != 2 || time_ids->shape[0] != b || time_ids->shape[1] != UNET_TIME_IDS ||
        time_ids->type != DTYPE_F32)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "unet: time ids %s must be F32 [%lld, %d]",
                         tensor_shape_str(time_ids, s, sizeof s), (long long)b, UNET_TIME_IDS);
    if (out->ndim != 4 || out->shape[0] != b || out->shape[1] != latents->shape[1] ||
        out->shape[2] != latents->shape[2] || out->shape[3] != cfg->out_channels)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "unet: output %s must be [%lld, %lld, %lld, %d]",
                         tensor_shape_str(out, s, sizeof s), (long long)b,
                         (long long)latents->shape[1], (long long)latents->shape[2],
                         cfg->out_channels);
    return SDXL_OK;
}

sdxl_status unet_forward(const unet *u, backend *be, arena *a, const tensor *latents,
                         const tensor *timestep, const tensor *text, const tensor *pooled,
                         const tensor *time_ids, tensor *out, sdxl_error *err)
{
    SDXL_TRY(check_inputs(u, latents, timestep, text, pooled, time_ids, out, err));
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(u, be, a, latents, timestep, text, pooled, time_ids, out, err);
    arena_reset_to(a, mark);
    return st;
}

sdxl_status unet_plan(const unet *u, backend *be, int64_t batch, int64_t height, int64_t width,
                      int64_t context_tokens, size_t *bytes, sdxl_error *err)
{
    const unet_config *cfg = &u->cfg;
    dtype type = backend_compute_type(be);
    arena plan;
    arena_init_planning(&plan);
    tensor latents, timestep, text, pooled, time_ids, out;
    SDXL_TRY(tensor_alloc(&timestep, &plan, DTYPE_F32, 1, (int64_t[]){1}, err));
    SDXL_TRY(tensor_alloc(&latents, &plan, type, 4,
                          (int64_t[]){batch, height, width, cfg->in_channels}, err));
    SDXL_TRY(tensor_alloc(&text, &plan, type, 3,
                          (int64_t[]){batch, context_tokens, cfg->cross_attention_dim}, err));
    SDXL_TRY(tensor_alloc(&pooled, &plan, type, 2, (int64_t[]){batch, u->pooled_dim}, err));
    SDXL_TRY(tensor_alloc(&time_ids, &plan, DTYPE_F32, 2, (int64_t[]){batch, UNET_TIME_IDS}, err));
    SDXL_TRY(tensor_alloc(&out, &plan, type, 4,
                          (int64_t[]){batch, height, width, cfg->out_channels}, err));
    arena_mark inputs = arena_get_mark(&plan);
    sdxl_status st =
        unet_forward(u, be, &plan, &latents, &timestep, &text, &pooled, &time_ids, &out, err);
    /* The first allocation's alignment padding depends on where the caller's arena stands. */
    *bytes = arena_peak(&plan) - inputs + TENSOR_ALIGN;
    arena_free(&plan);
    return st;
}
