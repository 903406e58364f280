/*
 * test_unet_flops.c — the UNet FLOP counter against torch's own count of the same forward pass.
 *
 * Expected values: torch 2.5.1's torch.utils.flop_counter.FlopCounterMode around diffusers
 * 0.31.0's UNet2DConditionModel built from each config on the meta device (77 text tokens),
 * which counts exactly what unet_flops does: convolutions and matrix products at 2 FLOPs per
 * multiply-add, biases and element-wise work not counted. "attention" is its aten.bmm share
 * (the q·kᵀ and p·v products). The counts are integers below 2^53, so they compare exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>

#include "engine/unet_flops.h"
#include "support/paths.h"

typedef struct flop_case {
    const char *model;
    int64_t batch, height, width;
    double total, attention;
} flop_case;

static const flop_case torch_counts[] = {
    {"tiny-a", 1, 8, 8, 70129664.0, 2285568.0},
    {"tiny-b", 2, 9, 13, 329339904.0, 18874368.0}, /* odd sides: ceil at each downsampling */
    {"sdxl-turbo", 1, 64, 64, 1588778762240.0, 55050240000.0},     /* 512² */
    {"sdxl-turbo", 1, 128, 128, 6761236398080.0, 783915417600.0}, /* 1024² */
};

static void unet_flops_match_torch_flop_counter(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof torch_counts / sizeof torch_counts[0]; i++) {
        const flop_case *c = &torch_counts[i];
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/models/configs/%s/unet", test_source_dir(), c->model);
        unet_config cfg;
        sdxl_error err;
        sdxl_status st = unet_config_load(dir, &cfg, &err);
        if (st != SDXL_OK)
            fail_msg("%s: %s", dir, err.message);
        unet_flop_count f = unet_flops(&cfg, c->batch, c->height, c->width, 77);
        printf("%s %lldx%lldx%lld: %.0f FLOPs (attention %.0f)\n", c->model,
               (long long)c->batch, (long long)c->height, (long long)c->width, f.total,
               f.attention);
        assert_true(f.total == c->total);
        assert_true(f.attention == c->attention);
    }
}

/* Twice the batch, twice the work: every counted op is per image. */
static void unet_flops_scale_with_batch(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/configs/sdxl-turbo/unet", test_source_dir());
    unet_config cfg;
    sdxl_error err;
    assert_int_equal(unet_config_load(dir, &cfg, &err), SDXL_OK);
    unet_flop_count one = unet_flops(&cfg, 1, 64, 96, 77);
    unet_flop_count three = unet_flops(&cfg, 3, 64, 96, 77);
    assert_true(three.total == 3 * one.total);
    assert_true(three.attention == 3 * one.attention);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unet_flops_match_torch_flop_counter),
        cmocka_unit_test(unet_flops_scale_with_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
