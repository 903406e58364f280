/*
 * random_weights.h — mkmodel's deterministic random weights: the value of every element of every
 * tensor, from (seed, component, tensor name, element index) alone.
 *
 * Counter-based, so any element can be computed without the ones before it (a 7 GB model is
 * generated in chunks, never held in memory), and portable: integer hashing, then only exact
 * IEEE operations (an integer-to-float conversion that is exact, + - * and a correctly rounded
 * sqrt) — no libm transcendental functions, whose last bits differ between C libraries. The
 * same arguments give the same bits on every machine.
 *
 * Distribution by kind (u uniform in [-1, 1), in steps of 2^-23):
 *   linear and conv weights  u · sqrt(3 / fan_in)   variance 1/fan_in: activations stay O(1)
 *   norm scales (γ)          1 + 0.1 u              near 1 but varied, so a lost scale shows
 *   biases, norm shifts (β)  0.05 u                 small but varied, so a lost bias shows
 *   embeddings               u                      std 0.58, like a trained CLIP's scale
 * See tools/mkmodel/README.md for why, and how the result was checked.
 */
#ifndef SDXL_MKMODEL_RANDOM_WEIGHTS_H
#define SDXL_MKMODEL_RANDOM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model_tensor.h"

typedef struct random_weights {
    uint64_t key;     /* from seed, component and tensor name */
    float center;     /* values are center + half_width · u */
    float half_width;
} random_weights;

/* component is the model folder ("unet", "text_encoder_2", ...): tensors of the same name in
 * two components get unrelated values. */
void random_weights_init(random_weights *w, uint64_t seed, const char *component,
                         const model_tensor *t);

/* Elements [first, first + n) of the tensor, in row-major (C) order. */
void random_weights_fill(const random_weights *w, uint64_t first, float *out, size_t n);

#endif /* SDXL_MKMODEL_RANDOM_WEIGHTS_H */
