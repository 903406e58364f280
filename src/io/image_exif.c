/*
 * image_exif.c — the orientation tag of a JPEG's EXIF (APP1) payload, read defensively.
 *
 * Layout: "Exif\0\0", then a TIFF header ("II" little-endian or "MM" big-endian, the number 42,
 * the offset of IFD0 from the TIFF header), then IFD0: an entry count and 12-byte entries
 * (tag, type, count, value or offset). Orientation is tag 0x0112, normally a SHORT; a LONG is
 * accepted too, as Pillow reads either. Every offset comes from the client, so each read is
 * checked against the payload's end; anything out of place means "no orientation" (1), never
 * a failed decode.
 */
#include <string.h>

#include "io/image.h"

#define EXIF_HEADER_BYTES 6
#define EXIF_TAG_ORIENTATION 0x0112
#define EXIF_TYPE_SHORT 3
#define EXIF_TYPE_LONG 4

typedef struct tiff_reader {
    const uint8_t *data; /* the TIFF header */
    size_t size;
    bool big_endian;
} tiff_reader;

static uint32_t tiff_u16(const tiff_reader *t, size_t at)
{
    const uint8_t *p = t->data + at;
    return t->big_endian ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t tiff_u32(const tiff_reader *t, size_t at)
{
    const uint8_t *p = t->data + at;
    return t->big_endian
               ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int image_exif_orientation(const uint8_t *data, size_t size)
{
    if (size < EXIF_HEADER_BYTES + 8 || memcmp(data, "Exif\0\0", EXIF_HEADER_BYTES) != 0)
        return 1;
    tiff_reader t = {.data = data + EXIF_HEADER_BYTES, .size = size - EXIF_HEADER_BYTES};
    if (memcmp(t.data, "MM", 2) == 0)
        t.big_endian = true;
    else if (memcmp(t.data, "II", 2) != 0)
        return 1;
    if (tiff_u16(&t, 2) != 42)
        return 1;
    size_t ifd = tiff_u32(&t, 4);
    if (ifd > t.size || t.size - ifd < 2)
        return 1;
    size_t count = tiff_u16(&t, ifd);
    size_t available = (t.size - ifd - 2) / 12;
    if (count > available)
        count = available;
    for (size_t i = 0; i < count; i++) {
        size_t entry = ifd + 2 + 12 * i;
        if (tiff_u16(&t, entry) != EXIF_TAG_ORIENTATION)
            continue;
        uint32_t type = tiff_u16(&t, entry + 2);
        if (tiff_u32(&t, entry + 4) < 1)
            return 1;
        uint32_t value;
        if (type == EXIF_TYPE_SHORT)
            value = tiff_u16(&t, entry + 8);
        else if (type == EXIF_TYPE_LONG)
            value = tiff_u32(&t, entry + 8);
        else
            return 1;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}
