/*
 * clip_config.c — reading and checking a CLIPTextConfig config.json (see clip_config.h).
 *
 * Missing keys take CLIPTextConfig's defaults, as transformers would.
 */
#include "engine/clip_config.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "engine/config_check.h"

/* "architectures": exactly one of the two text-encoder classes. */
static sdxl_status read_architecture(const json_doc *doc, clip_config *cfg, sdxl_error *err)
{
    const char *names[4];
    size_t count;
    sdxl_status st =
        json_get_string_list(doc, json_doc_root(doc), "architectures", 4, names, &count, err);
    if (st)
        return st;
    if (count == 1 && strcmp(names[0], "CLIPTextModel") == 0) {
        cfg->has_projection = false;
        return SDXL_OK;
    }
    if (count == 1 && strcmp(names[0], "CLIPTextModelWithProjection") == 0) {
        cfg->has_projection = true;
        return SDXL_OK;
    }
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "%s: key \"architectures\": expected [\"CLIPTextModel\"] or "
                     "[\"CLIPTextModelWithProjection\"]%s%s",
                     doc->name, count ? ", got a list starting with " : ", got an empty list",
                     count ? names[0] : "");
}

static sdxl_status read_sizes(const json_doc *doc, clip_config *cfg, sdxl_error *err)
{
    sdxl_status st = config_get_int_opt(doc, "vocab_size", 49408, 1, 1 << 24, &cfg->vocab_size,
                                        err);
    if (!st)
        st = config_get_int_opt(doc, "max_position_embeddings", 77, 2, 1 << 16,
                                &cfg->max_position_embeddings, err);
    if (!st)
        st = config_get_int_opt(doc, "hidden_size", 512, 1, CONFIG_MAX_SIZE, &cfg->hidden_size,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "intermediate_size", 2048, 1, CONFIG_MAX_SIZE,
                                &cfg->intermediate_size, err);
    if (!st)
        st = config_get_int_opt(doc, "num_hidden_layers", 12, 1, 1024, &cfg->num_hidden_layers,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "num_attention_heads", 8, 1, CONFIG_MAX_SIZE,
                                &cfg->num_attention_heads, err);
    if (!st)
        st = config_get_int_opt(doc, "projection_dim", 512, 1, CONFIG_MAX_SIZE,
                                &cfg->projection_dim, err);
    if (!st)
        st = config_get_int_opt(doc, "bos_token_id", 49406, 0, 1 << 24, &cfg->bos_token_id,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "eos_token_id", 49407, 0, 1 << 24, &cfg->eos_token_id,
                                err);
    if (!st)
        st = config_get_int_opt(doc, "pad_token_id", 1, 0, 1 << 24, &cfg->pad_token_id, err);
    return st;
}

static sdxl_status read_config(const json_doc *doc, clip_config *cfg, sdxl_error *err)
{
    int act;
    sdxl_status st = config_get_choice(doc, "model_type", "clip_text_model",
                                       (const char *const[]){"clip_text_model", NULL}, &act, err);
    if (!st)
        st = read_architecture(doc, cfg, err);
    if (!st)
        st = config_get_choice(doc, "hidden_act", "quick_gelu",
                               (const char *const[]){"quick_gelu", "gelu", NULL}, &act, err);
    if (!st)
        st = read_sizes(doc, cfg, err);
    double eps;
    if (!st)
        st = json_get_double_opt(doc, json_doc_root(doc), "layer_norm_eps", 1e-5, &eps, err);
    if (st)
        return st;
    cfg->hidden_act = act == 0 ? CLIP_ACTIVATION_QUICK_GELU : CLIP_ACTIVATION_GELU;
    if (!(eps > 0 && eps < 1))
        return error_set(err, SDXL_ERR_FORMAT, "%s: key \"layer_norm_eps\": %g is not in (0, 1)",
                         doc->name, eps);
    cfg->layer_norm_eps = (float)eps;
    if (cfg->hidden_size % cfg->num_attention_heads)
        return error_set(err, SDXL_ERR_FORMAT,
                         "%s: num_attention_heads %d does not divide hidden_size %d", doc->name,
                         cfg->num_attention_heads, cfg->hidden_size);
    return SDXL_OK;
}

static sdxl_status read_any(const json_doc *doc, void *cfg, sdxl_error *err)
{
    return read_config(doc, cfg, err);
}

sdxl_status clip_config_load(const char *dir, clip_config *cfg, sdxl_error *err)
{
    return config_load_dir(dir, "text encoder", read_any, cfg, sizeof *cfg, err);
}
