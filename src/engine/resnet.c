/*
 * resnet.c — diffusers' ResnetBlock2D (see resnet.h), following resnet.py's
 * ResnetBlock2D.forward for time_embedding_norm "default" without up/down sampling.
 */
#include "engine/resnet.h"

sdxl_status resnet_load(weights *w, const char *prefix, int in_channels, int out_channels,
                        int temb_channels, int groups, float eps, float output_scale_factor,
                        resnet *r, sdxl_error *err)
{
    if (in_channels <= 0 || out_channels <= 0 || temb_channels < 0 || groups <= 0 ||
        in_channels % groups != 0 || out_channels % groups != 0 || !(eps > 0.0f) ||
        !(output_scale_factor > 0.0f))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "%s: resnet with %d -> %d channels, %d groups, eps %g, output scale %g: "
                         "channels must be positive multiples of groups, eps and scale positive",
                         prefix, in_channels, out_channels, groups, (double)eps,
                         (double)output_scale_factor);
    r->in_channels = in_channels;
    r->out_channels = out_channels;
    r->temb_channels = temb_channels;
    r->groups = groups;
    r->eps = eps;
    r->output_scale_factor = output_scale_factor;
    int64_t in = in_channels, out = out_channels;
    SDXL_TRY(weights_load_norm(w, in, &r->norm1_w, &r->norm1_b, err, "%s.norm1", prefix));
    SDXL_TRY(weights_load_conv(w, out, in, 3, &r->conv1_w, &r->conv1_b, err, "%s.conv1", prefix));
    if (temb_channels > 0)
        SDXL_TRY(weights_load_linear(w, out, temb_channels, &r->temb_w, &r->temb_b, err,
                                     "%s.time_emb_proj", prefix));
    SDXL_TRY(weights_load_norm(w, out, &r->norm2_w, &r->norm2_b, err, "%s.norm2", prefix));
    SDXL_TRY(weights_load_conv(w, out, out, 3, &r->conv2_w, &r->conv2_b, err, "%s.conv2", prefix));
    /* diffusers' use_in_shortcut defaults to in != out, with a 1×1 conv. */
    r->has_shortcut = in_channels != out_channels;
    if (r->has_shortcut)
        SDXL_TRY(weights_load_conv(w, out, in, 1, &r->shortcut_w, &r->shortcut_b, err,
                                   "%s.conv_shortcut", prefix));
    return SDXL_OK;
}

void resnet_free(backend *be, resnet *r)
{
    tensor *all[] = {&r->norm1_w, &r->norm1_b, &r->conv1_w,    &r->conv1_b,   &r->temb_w,
                     &r->temb_b,  &r->norm2_w, &r->norm2_b,    &r->conv2_w,   &r->conv2_b,
                     &r->shortcut_w, &r->shortcut_b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        backend_weight_free(be, all[i]);
}

/* h [N, H, W, out] += time_emb_proj(SiLU(temb)) per image and channel. */
static sdxl_status add_time_embedding(const resnet *r, backend *be, arena *a, const tensor *temb,
                                      tensor *h, sdxl_error *err)
{
    tensor act, proj;
    SDXL_TRY(tensor_alloc_like(&act, a, temb, err)); // [N, temb]
    SDXL_TRY(backend_silu(be, temb, &act, err));
    SDXL_TRY(tensor_alloc(&proj, a, h->type, 2, (int64_t[]){h->shape[0], r->out_channels}, err));
    SDXL_TRY(backend_linear(be, &act, &r->temb_w, &r->temb_b, BACKEND_ACT_NONE, &proj, err));
    return backend_add_channels(be, h, &proj, h, err);
}

static sdxl_status forward(const resnet *r, backend *be, arena *a, const tensor *x,
                           const tensor *temb, tensor *y, sdxl_error *err)
{
    static const conv2d_params same3 = {1, 1, 1, 1, 1};
    static const conv2d_params same1 = {1, 0, 0, 0, 0};
    tensor h, t;
    SDXL_TRY(tensor_alloc_like(&h, a, y, err)); // [N, H, W, out]
    /* Temporaries above h are released as soon as they are used, so the peak is h plus the
     * largest of them rather than their sum. */
    arena_mark above_h = arena_get_mark(a);
    SDXL_TRY(tensor_alloc_like(&t, a, x, err)); // [N, H, W, in]
    SDXL_TRY(backend_group_norm(be, x, r->groups, r->eps, &r->norm1_w, &r->norm1_b, true, &t, err));
    SDXL_TRY(backend_conv2d(be, &t, &r->conv1_w, &r->conv1_b, &same3, &h, err));
    arena_reset_to(a, above_h);
    if (r->temb_channels > 0) {
        SDXL_TRY(add_time_embedding(r, be, a, temb, &h, err));
        arena_reset_to(a, above_h);
    }
    SDXL_TRY(backend_group_norm(be, &h, r->groups, r->eps, &r->norm2_w, &r->norm2_b, true, &h,
                                err));
    SDXL_TRY(backend_conv2d(be, &h, &r->conv2_w, &r->conv2_b, &same3, y, err));
    const tensor *residual = x;
    if (r->has_shortcut) {
        SDXL_TRY(tensor_alloc_like(&t, a, y, err)); // [N, H, W, out]
        SDXL_TRY(backend_conv2d(be, x, &r->shortcut_w, &r->shortcut_b, &same1, &t, err));
        residual = &t;
    }
    SDXL_TRY(backend_add(be, y, residual, y, err));
    /* SDXL's resnets all have scale 1 (nothing to do); others get a multiply by the reciprocal,
     * which can differ from torch's division in the last bit. */
    if (r->output_scale_factor != 1.0f)
        SDXL_TRY(backend_scale(be, y, 1.0f / r->output_scale_factor, 0.0f, y, err));
    return SDXL_OK;
}

sdxl_status resnet_forward(const resnet *r, backend *be, arena *a, const tensor *x,
                           const tensor *temb, tensor *y, sdxl_error *err)
{
    if (x->ndim != 4 || y->ndim != 4 || x->shape[3] != r->in_channels ||
        y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1] ||
        y->shape[2] != x->shape[2] || y->shape[3] != r->out_channels) {
        char xs[96], ys[96];
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "resnet: x %s must be [N, H, W, %d] and y %s [N, H, W, %d]",
                         tensor_shape_str(x, xs, sizeof xs), r->in_channels,
                         tensor_shape_str(y, ys, sizeof ys), r->out_channels);
    }
    if ((r->temb_channels > 0) != (temb != NULL))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "resnet: a time embedding is %s (the block has %d temb channels)",
                         temb ? "given but not used" : "required", r->temb_channels);
    if (x->data != NULL && x->data == y->data)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "resnet: y must not be x (x is needed for the residual)");
    arena_mark mark = arena_get_mark(a);
    sdxl_status st = forward(r, be, a, x, temb, y, err);
    arena_reset_to(a, mark);
    return st;
}
