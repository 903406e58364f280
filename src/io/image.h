/*
 * image.h — RGB8 images: decoding PNG, JPEG and WEBP from memory, encoding them, resizing
 * exactly as Pillow does, cropping, and the 256-pixel WEBP thumbnail.
 *
 * Every image in sdxld is 8-bit RGB, rows packed, no padding. Decoding turns whatever a client
 * sends into that:
 *   - the format is told by its magic bytes, never by a name or MIME type a client claims;
 *   - grayscale is replicated to RGB, palettes are expanded, 16-bit samples keep their high
 *     byte (what Pillow does for 16-bit RGB/RGBA/LA PNGs; for 16-bit grayscale Pillow clips
 *     every value over 255 to white, which destroys the image, so sdxld keeps the high byte
 *     there too);
 *   - transparency (alpha channel, tRNS) is composited over white:
 *         out = (c·a + 255·(255 − a) + 127) / 255   (integer division: rounds to nearest).
 *     diffusers' load_image() drops alpha with convert("RGB"), which exposes whatever colour the
 *     encoder left under transparent pixels (often black); white is what a viewer shows;
 *   - a JPEG's EXIF orientation (APP1, IFD0 tag 0x0112) is applied, as PIL.ImageOps.
 *     exif_transpose does in diffusers' load_image; CMYK and YCCK JPEGs are converted as
 *     Pillow's convert("RGB") does (Adobe inverted polarity, no colour management).
 *
 * Decoding treats its input as hostile: the caller's limits are checked against the header
 * before any pixel memory is allocated, libpng's and libjpeg's own allocations are bounded,
 * progressive JPEGs with more than IMAGE_JPEG_MAX_SCANS scans are refused, and neither library
 * may print or exit. Each problem has its own status, message and image_problem.
 *
 * Decoding and encoding are thread-safe (no global state); images are plain values.
 */
#ifndef SDXL_IO_IMAGE_H
#define SDXL_IO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* An RGB8 image: pixels is [height][width][3], row-major, owned (image_free). */
typedef struct image {
    int width;
    int height;
    uint8_t *pixels;
} image;

/* Allocates width × height × 3 bytes (uninitialised); width and height must be >= 1. */
sdxl_status image_alloc(image *img, int width, int height, sdxl_error *err);
/* Frees the pixels and zeroes img; safe on a zeroed or already freed image. */
void image_free(image *img);

typedef enum image_format {
    IMAGE_FORMAT_PNG = 0,
    IMAGE_FORMAT_JPEG = 1,
    IMAGE_FORMAT_WEBP = 2,
} image_format;

/* "PNG", "JPEG", "WEBP". */
const char *image_format_name(image_format format);
/* "image/png", "image/jpeg", "image/webp". */
const char *image_format_mime_type(image_format format);
/* Parses "png", "jpeg", "jpg", "webp" (any case); false if unknown. */
bool image_format_parse(const char *name, image_format *out);

/* Limits on what a client may send. A zero field means no limit on that quantity. */
typedef struct image_limits {
    size_t max_bytes;  /* encoded size */
    size_t max_pixels; /* width × height as declared in the header (decompression bombs) */
    int max_side;      /* width and height each */
} image_limits;

/* 50 MiB, 4096 × 4096 pixels, 8192 per side. */
image_limits image_default_limits(void);

/* A progressive JPEG is decoded scan by scan over the whole image; thousands of tiny scans
 * make a small file cost minutes of CPU. Real encoders write about 10. */
#define IMAGE_JPEG_MAX_SCANS 100

/* Why a decode failed: one value per distinct problem, stable, so the server can map them to
 * its error codes (image_problem_is_too_large → IMAGE_TOO_LARGE, OUT_OF_MEMORY → its own,
 * every other one → INVALID_IMAGE). */
typedef enum image_problem {
    IMAGE_PROBLEM_NONE = 0,
    IMAGE_PROBLEM_EMPTY = 1,           /* 0 bytes                                 FORMAT */
    IMAGE_PROBLEM_UNKNOWN_FORMAT = 2,  /* magic bytes of no supported format      UNSUPPORTED */
    IMAGE_PROBLEM_TRUNCATED = 3,       /* the data ends early                      FORMAT */
    IMAGE_PROBLEM_CORRUPT = 4,         /* malformed (bad CRC, bad marker, ...)     FORMAT */
    IMAGE_PROBLEM_UNSUPPORTED = 5,     /* valid but not handled (animation, ...)   UNSUPPORTED */
    IMAGE_PROBLEM_ZERO_SIZE = 6,       /* a declared width or height of 0          FORMAT */
    IMAGE_PROBLEM_TOO_MANY_BYTES = 7,  /* over limits.max_bytes                    LIMIT */
    IMAGE_PROBLEM_TOO_MANY_PIXELS = 8, /* over limits.max_pixels                   LIMIT */
    IMAGE_PROBLEM_SIDE_TOO_LONG = 9,   /* over limits.max_side                     LIMIT */
    IMAGE_PROBLEM_TOO_MANY_SCANS = 10, /* over IMAGE_JPEG_MAX_SCANS                LIMIT */
    IMAGE_PROBLEM_OUT_OF_MEMORY = 11,  /* an allocation failed                     OUT_OF_MEMORY */
} image_problem;

/* "none", "empty", "unknown_format", "truncated", ... (lower-case enum suffix). */
const char *image_problem_name(image_problem problem);
/* True for the problems caused by a configured limit (status SDXL_ERR_LIMIT). */
bool image_problem_is_too_large(image_problem problem);

/* What image_decode found; filled on success and on failure (as far as it got). */
typedef struct image_decode_info {
    image_format format;   /* valid once the magic bytes matched */
    image_problem problem; /* IMAGE_PROBLEM_NONE on success */
    int orientation;       /* EXIF orientation applied, 1..8 (1 for PNG, WEBP, no EXIF) */
} image_decode_info;

/* Tells the format from the magic bytes: SDXL_ERR_FORMAT for empty data or a truncated magic,
 * SDXL_ERR_UNSUPPORTED (naming the bytes seen, and the format when it is a known one such as
 * GIF) otherwise. */
sdxl_status image_sniff_format(const void *data, size_t size, image_format *out,
                               sdxl_error *err);

/* Decodes data into a new image (out is overwritten; free it with image_free). limits may be
 * NULL (no limits); info may be NULL. On failure out is zeroed. */
sdxl_status image_decode(const void *data, size_t size, const image_limits *limits, image *out,
                         image_decode_info *info, sdxl_error *err);

/* An encoded image: data is malloc'd, owned (image_buffer_free). */
typedef struct image_buffer {
    uint8_t *data;
    size_t size;
} image_buffer;

void image_buffer_free(image_buffer *buf);

typedef struct image_encode_params {
    image_format format;
    int quality;         /* JPEG and WEBP, 1..100 */
    int png_compression; /* zlib level 0..9 */
} image_encode_params;

/* PNG, quality 90, compression 6 (zlib's and Pillow's default). */
image_encode_params image_encode_default_params(void);

/* Encodes img; SDXL_ERR_INVALID_ARGUMENT for a quality or level out of range. */
sdxl_status image_encode(const image *img, const image_encode_params *params, image_buffer *out,
                         sdxl_error *err);

/* Resizes as Pillow's Image.resize((width, height), Image.LANCZOS) does on an RGB image, bit for
 * bit (diffusers' VaeImageProcessor resizes that way): two separable passes (horizontal first),
 * Lanczos-3 widened by the scale factor when shrinking, coefficients rounded to 22-bit fixed
 * point. The same size gives a copy. */
sdxl_status image_resize_lanczos(const image *in, int width, int height, image *out,
                                 sdxl_error *err);

/* The width × height window at the centre of in (width <= in->width, height <= in->height),
 * starting at column in->width / 2 − width / 2 and row in->height / 2 − height / 2: the
 * placement diffusers' VaeImageProcessor._resize_and_crop uses. */
sdxl_status image_center_crop(const image *in, int width, int height, image *out,
                              sdxl_error *err);

/* Applies an EXIF orientation (1..8) as PIL.ImageOps.exif_transpose does: 2 mirror, 3 rotate
 * 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-
 * clockwise. 1 (or any other value) gives a copy. */
sdxl_status image_apply_orientation(const image *in, int orientation, image *out,
                                    sdxl_error *err);

/* The orientation (1..8) in the payload of a JPEG APP1 segment (starting "Exif\0\0"), or 1 when
 * the payload is not EXIF, is malformed, or has no valid orientation tag. Reads only inside
 * [data, data + size). */
int image_exif_orientation(const uint8_t *data, size_t size);

#define IMAGE_THUMBNAIL_SIDE 256

/* The thumbnail's size: the longer side IMAGE_THUMBNAIL_SIDE, the other scaled to keep the
 * aspect ratio, rounded to nearest (at least 1). */
void image_thumbnail_size(int width, int height, int *thumb_width, int *thumb_height);

/* A WEBP of img resized (Lanczos) to image_thumbnail_size, at the given quality (1..100). */
sdxl_status image_encode_thumbnail(const image *img, int quality, image_buffer *out,
                                   sdxl_error *err);

#endif /* SDXL_IO_IMAGE_H */
