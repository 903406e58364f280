/*
 * random_weights.c — mkmodel's deterministic random weights (see random_weights.h).
 *
 * Element i of a tensor is splitmix64's output function applied to key + (i + 1) · γ, the
 * golden-ratio increment splitmix64 itself steps by; the key mixes the seed with an FNV-1a hash
 * of "component/name". The top 24 bits give u = k · 2^-23 - 1, exactly representable in float.
 */
#include "random_weights.h"

#include <math.h>

#define SPLITMIX_GAMMA 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3ull;
    }
    return h;
}

void random_weights_init(random_weights *w, uint64_t seed, const char *component,
                         const model_tensor *t)
{
    uint64_t h = fnv1a64(0xCBF29CE484222325ull, component);
    h = fnv1a64(h, "/");
    h = fnv1a64(h, t->name);
    w->key = mix64(mix64(seed) ^ h);
    switch (t->kind) {
    case MODEL_TENSOR_LINEAR_WEIGHT:
    case MODEL_TENSOR_CONV_WEIGHT:
        w->center = 0.0f;
        w->half_width = (float)sqrt(3.0 / (double)model_tensor_fan_in(t));
        break;
    case MODEL_TENSOR_NORM_SCALE:
        w->center = 1.0f;
        w->half_width = 0.1f;
        break;
    case MODEL_TENSOR_BIAS:
        w->center = 0.0f;
        w->half_width = 0.05f;
        break;
    case MODEL_TENSOR_EMBEDDING:
        w->center = 0.0f;
        w->half_width = 1.0f;
        break;
    }
}

void random_weights_fill(const random_weights *w, uint64_t first, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = mix64(w->key + (first + i + 1) * SPLITMIX_GAMMA);
        float u = (float)(bits >> 40) * (1.0f / 8388608.0f) - 1.0f;
        out[i] = w->center + w->half_width * u;
    }
}
