/*
 * pipeline_params.c — defaults and checks of sdxl_generate's parameters (see
 * pipeline_params.h).
 */
#include "engine/pipeline_params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image_processor.h"
#include "engine/scheduler.h"
#include "engine/unicode.h"

sdxl_generate_params pipeline_default_params(void)
{
    sdxl_generate_params p;
    memset(&p, 0, sizeof p);
    p.num_inference_steps = 2;
    p.strength = 0.8f;
    p.guidance_scale = 0.0f;
    p.batch_size = 1;
    return p;
}

double pipeline_strength_value(float strength)
{
    char text[32];
    for (int digits = 1; digits <= 9; digits++) { /* 9 significant digits always round-trip */
        snprintf(text, sizeof text, "%.*g", digits, (double)strength);
        if (strtof(text, NULL) == strength)
            break;
    }
    return strtod(text, NULL);
}

static sdxl_status invalid(sdxl_error *err, const char *field, sdxl_status st)
{
    return error_field(err, st, field);
}

static sdxl_status check_text(const char *text, const char *field, sdxl_error *err)
{
    size_t bad;
    if (!utf8_validate((const unsigned char *)text, strlen(text), &bad))
        return invalid(err, field,
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "%s is not valid UTF-8 (byte %zu); send text as UTF-8", field,
                                 bad));
    return SDXL_OK;
}

/* One requested side: 0 (resolved later) or a multiple of the VAE's scale in range. */
static sdxl_status check_side(int side, const char *field, const pipeline_limits *lim,
                              sdxl_error *err)
{
    if (side == 0)
        return SDXL_OK;
    if (side < lim->vae_scale || side > SDXL_MAX_SIDE || side % lim->vae_scale != 0)
        return invalid(err, field,
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "%s %d: must be a multiple of %d from %d to %d (or 0 for the "
                                 "default)",
                                 field, side, lim->vae_scale, lim->vae_scale, SDXL_MAX_SIDE));
    return SDXL_OK;
}

/* The output size of an img2img request: the requested sides, or the image's rounded down. */
static sdxl_status img2img_size(const pipeline_limits *lim, const sdxl_generate_params *p,
                                int *width, int *height, sdxl_error *err)
{
    const sdxl_image *im = p->init_image;
    if (!im->pixels || im->width < 1 || im->height < 1)
        return invalid(err, "init_image",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "init_image is %dx%d%s; give an RGB image of at least %dx%d",
                                 im->width, im->height, im->pixels ? "" : " without pixels",
                                 lim->vae_scale, lim->vae_scale));
    sdxl_status st = image_processor_size(im->width, im->height, p->width, p->height,
                                          lim->vae_scale, width, height, err);
    if (st != SDXL_OK)
        return invalid(err, "init_image", st);
    if (*width > SDXL_MAX_SIDE || *height > SDXL_MAX_SIDE)
        return invalid(err, "init_image",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "init_image is %dx%d, over the largest output side %d; set "
                                 "width and height to resize it, or send a smaller image",
                                 im->width, im->height, SDXL_MAX_SIDE));
    return SDXL_OK;
}

sdxl_status pipeline_request_make(const pipeline_limits *lim, const sdxl_generate_params *p,
                                  pipeline_request *out, sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    sdxl_status st;
    if (!p->prompt)
        return invalid(err, "prompt",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "prompt is required (an empty string is allowed)"));
    if ((st = check_text(p->prompt, "prompt", err)) != SDXL_OK)
        return st;
    if (p->negative_prompt && (st = check_text(p->negative_prompt, "negative_prompt", err)))
        return st;
    if ((st = check_side(p->width, "width", lim, err)) != SDXL_OK ||
        (st = check_side(p->height, "height", lim, err)) != SDXL_OK)
        return st;
    if (p->num_inference_steps < 1 || p->num_inference_steps > SDXL_MAX_STEPS)
        return invalid(err, "num_inference_steps",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "num_inference_steps %d: must be from 1 to %d",
                                 p->num_inference_steps, SDXL_MAX_STEPS));
    if (!(p->guidance_scale >= 0.0f && p->guidance_scale <= SDXL_MAX_GUIDANCE))
        return invalid(err, "guidance_scale",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "guidance_scale %g: must be from 0 to %g (guidance runs when "
                                 "it is over 1)",
                                 (double)p->guidance_scale, (double)SDXL_MAX_GUIDANCE));
    if (p->batch_size < 1 || p->batch_size > SDXL_MAX_BATCH)
        return invalid(err, "batch_size",
                       error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                 "batch_size %d: must be from 1 to %d", p->batch_size,
                                 SDXL_MAX_BATCH));

    int width = p->width ? p->width : lim->default_width;
    int height = p->height ? p->height : lim->default_height;
    if (p->init_image) {
        if (!(p->strength > 0.0f && p->strength <= 1.0f))
            return invalid(err, "strength",
                           error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                     "strength %g: must be over 0 and at most 1",
                                     (double)p->strength));
        out->strength = pipeline_strength_value(p->strength);
        size_t begin = scheduler_img2img_begin(p->num_inference_steps, out->strength);
        if (begin >= (size_t)p->num_inference_steps)
            return invalid(err, "strength",
                           error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                                     "num_inference_steps %d × strength %g runs no denoising "
                                     "step (int(%d × %g) = 0); raise num_inference_steps or "
                                     "strength so that their product is at least 1",
                                     p->num_inference_steps, out->strength,
                                     p->num_inference_steps, out->strength));
        if ((st = img2img_size(lim, p, &width, &height, err)) != SDXL_OK)
            return st;
    }

    out->shape = (pipeline_shape){.width = width,
                                  .height = height,
                                  .batch = p->batch_size,
                                  .img2img = p->init_image != NULL,
                                  .cfg = p->guidance_scale > 1.0f};
    out->prompt = p->prompt;
    out->negative_prompt = p->negative_prompt;
    out->init_image = p->init_image;
    out->steps = p->num_inference_steps;
    out->guidance_scale = p->guidance_scale;
    out->seed = p->seed;
    out->seed_set = p->seed_set;
    out->progress = p->progress;
    out->progress_user = p->progress_user;
    out->on_image = p->on_image;
    out->on_image_user = p->on_image_user;
    return SDXL_OK;
}
