/*
 * fuzz_image_decode.c — image_decode on arbitrary bytes under small limits (all three decoders,
 * chosen by the magic bytes as for a client's upload), then a resize of what decoded; and the
 * EXIF orientation parser on the same bytes behind an "Exif\0\0" header. Nothing may crash,
 * read out of bounds, leak, or break the contract: success gives an image within the limits,
 * failure gives no image, a problem and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const image_limits limits = {.max_bytes = 1 << 16, .max_pixels = 256 * 256, .max_side = 512};
    image img;
    image_decode_info info;
    sdxl_error err = {0};
    sdxl_status st = image_decode(data, size, &limits, &img, &info, &err);
    if (st == SDXL_OK) {
        if (info.problem != IMAGE_PROBLEM_NONE || !img.pixels || img.width < 1 ||
            img.height < 1 || img.width > limits.max_side || img.height > limits.max_side ||
            (size_t)img.width * img.height > limits.max_pixels || info.orientation < 1 ||
            info.orientation > 8)
            abort();
        image small;
        int w = 1 + (size ? data[size - 1] : 0) % 40, h = 1 + (size ? data[0] : 0) % 40;
        if (image_resize_lanczos(&img, w, h, &small, &err) == SDXL_OK)
            image_free(&small);
        image_free(&img);
    } else if (img.pixels || info.problem == IMAGE_PROBLEM_NONE || err.code != st ||
               !err.message[0] ||
               image_problem_is_too_large(info.problem) != (st == SDXL_ERR_LIMIT)) {
        abort();
    }

    uint8_t *exif = malloc(size + 6);
    if (exif) {
        memcpy(exif, "Exif\0\0", 6);
        memcpy(exif + 6, data, size);
        int o = image_exif_orientation(exif, size + 6);
        free(exif);
        if (o < 1 || o > 8)
            abort();
    }
    return 0;
}
