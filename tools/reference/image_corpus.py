#!/usr/bin/env python3
"""image_corpus.py — writes the image decoder's test corpus and the fuzz seeds.

    /tmp/refvenv/bin/python tools/reference/image_corpus.py        (from the repository root)

Writes, replacing what is there:
  tests/unit/data/images/*.{png,jpg,webp,gif,bin,txt,wav}  valid images of every kind sdxld
      decodes and broken ones (truncated, wrong magic, huge or zero declared sizes, bad CRC,
      bad zlib, bombs in ancillary chunks, a JPEG with a thousand scans, ...). What each must
      decode to or fail with is stated in tests/unit/test_image_decode.c.
  tests/unit/data/images/expected.safetensors  for every valid file, the RGB8 pixels
      ([height, width, 3] uint8, tensor named after the file) sdxld must produce: Pillow's
      decode (with ImageOps.exif_transpose for JPEG) where sdxld follows Pillow, with alpha
      composited over white as sdxld does ((c*a + 255*(255-a) + 127) // 255), and 16-bit
      grayscale reduced to its high byte (Pillow clips it instead; see src/io/image.h).
  tests/fuzz/corpus/fuzz_image_decode/*  small seeds for the decoder fuzz target.

Pillow cannot write interlaced, 16-bit RGB or sub-byte PNGs, so a small PNG writer is included;
nor YCCK JPEGs, which a small C program on the system's libjpeg writes (needs cc and libjpeg-dev).
Byte surgery (cutting, patching headers, duplicating scans) makes the broken files. Made with
Pillow 11.0.0 (libjpeg-turbo 3.0.4, libwebp 1.4.0, zlib 1.2.13); other versions may encode
JPEG/WEBP bytes differently, which is fine: the expected pixels are remade from the same files.
"""
import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageOps
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "unit", "data", "images")
FUZZ = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_image_decode")


# ---------------------------------------------------------------------------------------------
# Source pixels

def picture(w, h, seed=0):
    """A deterministic RGB picture: gradients, a disc and a few hard edges (uint8 [h, w, 3])."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = x * 255 // max(w - 1, 1)
    g = y * 255 // max(h - 1, 1)
    b = ((x + 2 * y) * 23 + seed * 61) % 256
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.3) ** 2
    r = np.where(disc, 250 - r // 4, r)
    g = np.where(disc, 30 + seed * 7 % 50, g)
    img = np.stack([r, g, b], axis=-1)
    img[: max(h // 6, 1), : max(w // 5, 1)] = [255, 0, 0]  # a red corner: shows orientation
    return img.astype(np.uint8)


def alpha_ramp(w, h):
    """Alpha from 0 to 255 across the image, with fully opaque and fully clear columns."""
    y, x = np.mgrid[0:h, 0:w]
    a = (x * 255 // max(w - 1, 1) + y * 7) % 256
    a[:, 0] = 0
    a[:, -1] = 255
    return a.astype(np.uint8)


def flatten(rgba):
    """Alpha over white, as sdxld does."""
    c = rgba[..., :3].astype(np.int64)
    a = rgba[..., 3:4].astype(np.int64)
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# A minimal PNG writer (any colour type and bit depth, optional Adam7 interlacing)

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One row of samples (ints) into bytes at a bit depth of 1, 2, 4, 8 or 16."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(s)) for s in samples)
    if depth == 8:
        return bytes(int(s) for s in samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        group = list(samples[i:i + per]) + [0] * (per - len(samples[i:i + per]))
        for s in group:
            byte = (byte << depth) | int(s)
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_bytes(samples, color_type, depth, interlace=False, plte=None, trns=None, extra=()):
    """samples: [h, w, channels] integers. extra: (kind, data) chunks placed before IDAT."""
    h, w = samples.shape[:2]
    flat = samples.reshape(h, w, -1)
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = flat[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), depth)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    for kind, data in extra:
        out += chunk(kind, data)
    if plte is not None:
        out += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    out += chunk(b"IEND", b"")
    return out


def png_chunks(data):
    """[(offset, kind, length)] of a PNG's chunks."""
    pos, found = 8, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        found.append((pos, kind, length))
        pos += 12 + length
    return found


def png_with_ihdr(data, width, height):
    """data with IHDR's width and height replaced (CRC fixed) and nothing after IHDR."""
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    return data[:8] + chunk(b"IHDR", bytes(ihdr))


# ---------------------------------------------------------------------------------------------
# Pillow helpers

def pil_bytes(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def pil_rgb(data):
    """Pillow's decode as sdxld intends it: EXIF applied, alpha over white."""
    im = Image.open(io.BytesIO(data))
    im = ImageOps.exif_transpose(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        return flatten(np.array(im.convert("RGBA")))
    return np.array(im.convert("RGB"))


def jpeg_segments(data):
    """[(offset, marker)] of a JPEG's markers up to the first SOS."""
    pos, found = 2, []
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        found.append((pos, marker))
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return found


def jpeg_with_size(data, width, height):
    """Patches the SOF0/SOF2 frame header's height and width."""
    for pos, marker in jpeg_segments(data):
        if marker in (0xC0, 0xC2):
            out = bytearray(data)
            out[pos + 5:pos + 9] = struct.pack(">HH", height, width)
            return bytes(out)
    raise ValueError("no SOF")


def jpeg_scans(data):
    """[(start, end)] of every scan (SOS marker through its entropy-coded data)."""
    scans, pos = [], 2
    while pos < len(data) - 1:
        if data[pos] != 0xFF:
            raise ValueError("not at a marker")
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        end = pos + 2 + length
        if marker == 0xDA:
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
            scans.append((pos, end))
        pos = end
    return scans


# Pillow cannot write YCCK JPEGs; libjpeg can, through this small program (built with the
# system compiler and libjpeg, both sdxld build dependencies). stdin: width, height and CMYK
# bytes in Adobe's inverted polarity (as Pillow's "CMYK;I"); stdout: a YCCK JPEG.
YCCK_WRITER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(void) {
    unsigned w, h;
    if (fread(&w, 4, 1, stdin) != 1 || fread(&h, 4, 1, stdin) != 1) return 1;
    unsigned char *px = malloc((size_t)w * h * 4);
    if (!px || fread(px, 4, (size_t)w * h, stdin) != (size_t)w * h) return 1;
    struct jpeg_compress_struct c; struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, stdout);
    c.image_width = w; c.image_height = h; c.input_components = 4; c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCCK);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = px + (size_t)c.next_scanline * w * 4;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    return 0;
}
"""


def ycck_jpeg(cmyk_inverted):
    """A YCCK JPEG of [h, w, 4] CMYK bytes (Adobe polarity), written by libjpeg."""
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "ycck.c"), os.path.join(tmp, "ycck")
        with open(src, "w") as f:
            f.write(YCCK_WRITER)
        subprocess.run(["cc", "-O1", "-o", exe, src, "-ljpeg"], check=True)
        h, w = cmyk_inverted.shape[:2]
        data = struct.pack("<II", w, h) + cmyk_inverted.tobytes()
        return subprocess.run([exe], input=data, capture_output=True, check=True).stdout


def exif_le(orientation, value_type=3):
    """A little-endian ("II") EXIF payload holding only an orientation tag."""
    value = struct.pack("<H", orientation) + b"\0\0" if value_type == 3 else \
        struct.pack("<I", orientation)
    ifd = struct.pack("<H", 1) + struct.pack("<HHI", 0x0112, value_type, 1) + value + \
        struct.pack("<I", 0)
    return b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd


# ---------------------------------------------------------------------------------------------

def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(FUZZ, exist_ok=True)
    for d in (OUT, FUZZ):
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))

    files, expected = {}, {}

    def ok(name, data, pixels=None, like_pillow=True):
        """A valid file; its expected pixels (Pillow's decode unless given). like_pillow=False
        where sdxld decides differently (or Pillow refuses the file)."""
        files[name] = data
        want = pil_rgb(data) if pixels is None else pixels
        if pixels is not None and like_pillow:
            assert np.array_equal(pil_rgb(data), want), name
        expected[name] = np.ascontiguousarray(want)

    def bad(name, data):
        files[name] = data

    W, H = 24, 16
    rgb = picture(W, H)
    alpha = alpha_ramp(W, H)
    gray = rgb[..., 1]

    # PNG, every colour type and depth ------------------------------------------------------
    ok("png_rgb.png", pil_bytes(Image.fromarray(rgb), "PNG"), rgb)
    ok("png_gray.png", pil_bytes(Image.fromarray(gray, "L"), "PNG"),
       np.repeat(gray[..., None], 3, axis=-1))
    g1 = (gray > 127).astype(np.uint8)
    ok("png_gray1.png", png_bytes(g1[..., None], 0, 1),
       np.repeat((g1 * 255)[..., None], 3, axis=-1))
    g2 = gray >> 6
    ok("png_gray2.png", png_bytes(g2[..., None], 0, 2),
       np.repeat((g2 * 85)[..., None], 3, axis=-1))
    ok("png_gray_alpha.png", png_bytes(np.stack([gray, alpha], -1), 4, 8),
       flatten(np.stack([gray, gray, gray, alpha], -1)))
    palette = picture(16, 1, seed=3).reshape(16, 3)
    index = ((rgb[..., 0].astype(np.int64) + rgb[..., 1]) // 32 % 16).astype(np.uint8)
    ok("png_palette4.png", png_bytes(index[..., None], 3, 4, plte=palette), palette[index])
    trns = bytes([0, 64, 128, 200, 255, 255, 10])  # entries 7..15 opaque
    pal_alpha = np.full(16, 255, dtype=np.uint8)
    pal_alpha[:len(trns)] = list(trns)
    ok("png_palette_trns.png", png_bytes(index[..., None], 3, 8, plte=palette, trns=trns),
       flatten(np.concatenate([palette[index], pal_alpha[index][..., None]], -1)))
    ok("png_rgba.png", pil_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"),
       flatten(np.dstack([rgb, alpha])))
    key = rgb[0, 0]
    keyed = np.all(rgb == key, axis=-1)
    ok("png_rgb_trns.png", png_bytes(rgb, 2, 8, trns=struct.pack(">HHH", *map(int, key))),
       np.where(keyed[..., None], np.uint8(255), rgb), like_pillow=False)
    rgb16 = rgb.astype(np.uint16) * 256 + np.arange(W, dtype=np.uint16)[None, :, None] * 9
    ok("png_rgb16.png", png_bytes(rgb16, 2, 16), (rgb16 >> 8).astype(np.uint8))
    gray16 = gray.astype(np.uint16) * 256 + 77
    ok("png_gray16.png", png_bytes(gray16[..., None], 0, 16),
       np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, axis=-1), like_pillow=False)
    rgba16 = np.dstack([rgb16, alpha.astype(np.uint16) * 257])
    ok("png_rgba16.png", png_bytes(rgba16, 6, 16), flatten(np.dstack([rgb, alpha])))
    odd = picture(13, 11, seed=5)
    ok("png_interlaced.png", png_bytes(odd, 2, 8, interlace=True), odd)
    odd_index = index[:11, :13]
    ok("png_interlaced_palette2.png",
       png_bytes((odd_index % 4)[..., None], 3, 2, interlace=True, plte=palette[:4]),
       palette[:4][odd_index % 4])
    ok("png_interlaced_rgba16.png", png_bytes(rgba16[:11, :13], 6, 16, interlace=True),
       flatten(np.dstack([rgb, alpha])[:11, :13]))
    # Ancillary chunks that decompress to 32 MiB: dropped unread.
    bomb = zlib.compress(bytes(32 << 20), 9)
    ok("png_ztxt_bomb.png", png_bytes(rgb, 2, 8, extra=[(b"zTXt", b"Comment\0\0" + bomb)]), rgb,
       like_pillow=False)
    ok("png_iccp_bomb.png", png_bytes(rgb, 2, 8, extra=[(b"iCCP", b"profile\0\0" + bomb)]), rgb,
       like_pillow=False)
    full = files["png_rgb.png"]
    iend = [c for c in png_chunks(full) if c[1] == b"IEND"][0][0]
    ok("png_missing_iend.png", full[:iend], rgb)

    # PNG, broken -----------------------------------------------------------------------------
    bad("png_signature_only.png", full[:8])
    bad("png_truncated_header.png", full[:20])
    idat = [c for c in png_chunks(full) if c[1] == b"IDAT"][0]
    bad("png_truncated_idat.png", full[:idat[0] + 8 + idat[2] // 2])
    crc = bytearray(full)
    crc[idat[0] + 8 + idat[2]] ^= 0xFF
    bad("png_bad_crc.png", bytes(crc))
    garbage = bytes((i * 97 + 13) % 256 for i in range(64))
    bad("png_bad_zlib.png", full[:idat[0]] + chunk(b"IDAT", garbage) + chunk(b"IEND", b""))
    bad("png_huge.png", png_with_ihdr(full, 100000, 100000))
    bad("png_too_many_pixels.png", png_with_ihdr(full, 8000, 8000))
    bad("png_zero_width.png", png_with_ihdr(full, 0, 16))
    bad("png_no_ihdr.png", full[:8] + chunk(b"IDAT", b"") + chunk(b"IEND", b""))

    # JPEG ------------------------------------------------------------------------------------
    big = picture(64, 48, seed=1)
    ok("jpeg_baseline.jpg", pil_bytes(Image.fromarray(big), "JPEG", quality=90))
    ok("jpeg_444.jpg", pil_bytes(Image.fromarray(big), "JPEG", quality=90, subsampling=0))
    ok("jpeg_progressive.jpg",
       pil_bytes(Image.fromarray(big), "JPEG", quality=90, progressive=True))
    ok("jpeg_gray.jpg", pil_bytes(Image.fromarray(big[..., 1], "L"), "JPEG", quality=90))
    cmyk = Image.fromarray(big).convert("CMYK")
    ok("jpeg_cmyk.jpg", pil_bytes(cmyk, "JPEG", quality=90))
    ok("jpeg_ycck.jpg", ycck_jpeg(255 - np.array(cmyk)))
    for n in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = n
        ok(f"jpeg_exif_{n}.jpg",
           pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes()))
    ok("jpeg_exif_6_intel.jpg",
       pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=exif_le(6)))
    ok("jpeg_exif_8_long.jpg",
       pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=exif_le(8, value_type=4)))
    bad_offset = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 0xFFFFFFF0)
    ok("jpeg_exif_bad_offset.jpg",
       pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=bad_offset))

    # JPEG, broken ----------------------------------------------------------------------------
    base = files["jpeg_baseline.jpg"]
    prog = files["jpeg_progressive.jpg"]
    bad("jpeg_soi_only.jpg", base[:3])
    bad("jpeg_truncated_header.jpg", base[:100])
    scan = jpeg_scans(base)[0]
    bad("jpeg_truncated_scan.jpg", base[:(scan[0] + scan[1]) // 2])
    pscans = jpeg_scans(prog)
    bad("jpeg_truncated_progressive.jpg", prog[:pscans[len(pscans) // 2][0] + 20])
    bad("jpeg_huge.jpg", jpeg_with_size(base, 60000, 60000))
    bad("jpeg_zero_height.jpg", jpeg_with_size(base, 64, 0))
    bad("jpeg_bad_marker.jpg", base[:2] + b"\xff\x02" + base[2:])  # a reserved marker
    dht = [p for p, m in jpeg_segments(base) if m == 0xC4][0]
    huffman = bytearray(base)
    huffman[dht + 5:dht + 21] = b"\xff" * 16  # code counts summing to more than 256
    bad("jpeg_bad_huffman.jpg", bytes(huffman))
    sof = [p for p, m in jpeg_segments(base) if m == 0xC0][0]
    lossless = bytearray(base)
    lossless[sof + 1] = 0xC3
    bad("jpeg_lossless.jpg", bytes(lossless))
    first_scan = prog[pscans[0][0]:pscans[0][1]]
    bad("jpeg_many_scans.jpg", prog[:pscans[0][1]] + first_scan * 1000 + prog[pscans[0][1]:])

    # WEBP ------------------------------------------------------------------------------------
    ok("webp_lossy.webp", pil_bytes(Image.fromarray(big), "WEBP", quality=90))
    ok("webp_lossless.webp", pil_bytes(Image.fromarray(rgb), "WEBP", lossless=True), rgb)
    rgba = np.dstack([rgb, alpha])
    ok("webp_alpha_lossless.webp",
       pil_bytes(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True, exact=True),
       flatten(rgba))
    ok("webp_alpha_lossy.webp", pil_bytes(Image.fromarray(np.dstack([big, alpha_ramp(64, 48)]),
                                                          "RGBA"), "WEBP", quality=90))

    # WEBP, broken ----------------------------------------------------------------------------
    lossy = files["webp_lossy.webp"]
    bad("webp_truncated.webp", lossy[:len(lossy) // 2])
    bad("webp_truncated_header.webp", lossy[:20])
    wide = Image.new("RGB", (9000, 8), (1, 2, 3))
    bad("webp_wide.webp", pil_bytes(wide, "WEBP", lossless=True))
    many = Image.new("RGB", (8000, 2200), (1, 2, 3))
    bad("webp_too_many_pixels.webp", pil_bytes(many, "WEBP", lossless=True))
    frames = [Image.fromarray(picture(16, 16, seed=s)) for s in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    bad("webp_animated.webp", buf.getvalue())
    corrupt = bytearray(lossy)
    corrupt[20 + 3:20 + 6] = b"\0\0\0"  # the VP8 frame's start code
    bad("webp_bad_start_code.webp", bytes(corrupt))

    # Not images (or not supported ones) ------------------------------------------------------
    bad("empty.bin", b"")
    bad("text.txt", b"hello, this is not an image\n")
    bad("gif.gif", pil_bytes(Image.fromarray(rgb).convert("P"), "GIF"))
    bad("riff_wave.wav", b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + bytes(24))

    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    save_file(dict(sorted(expected.items())), os.path.join(OUT, "expected.safetensors"))

    # Fuzz seeds: small valid files of each kind and a few broken ones.
    tiny = picture(8, 6, seed=2)
    tiny_alpha = np.dstack([tiny, alpha_ramp(8, 6)])
    seeds = {
        "rgb.png": pil_bytes(Image.fromarray(tiny), "PNG"),
        "interlaced_rgba16.png": png_bytes(np.dstack([tiny, alpha_ramp(8, 6)]).astype(np.uint16)
                                           * 257, 6, 16, interlace=True),
        "palette_trns.png": png_bytes((tiny[..., :1] // 64), 3, 2, plte=palette[:4], trns=b"\0\x80"),
        "baseline.jpg": pil_bytes(Image.fromarray(tiny), "JPEG", quality=80),
        "progressive.jpg": pil_bytes(Image.fromarray(tiny), "JPEG", quality=80, progressive=True),
        "cmyk.jpg": pil_bytes(Image.fromarray(tiny).convert("CMYK"), "JPEG", quality=80),
        "exif6.jpg": pil_bytes(Image.fromarray(tiny), "JPEG", quality=80, exif=exif_le(6)),
        "lossy.webp": pil_bytes(Image.fromarray(tiny), "WEBP", quality=80),
        "alpha.webp": pil_bytes(Image.fromarray(tiny_alpha, "RGBA"), "WEBP", lossless=True),
        "truncated.png": files["png_truncated_idat.png"],
        "truncated.jpg": files["jpeg_truncated_scan.jpg"],
        "huge.png": files["png_huge.png"],
        "zero.jpg": files["jpeg_zero_height.jpg"],
        "gif.gif": files["gif.gif"],
    }
    for name, data in seeds.items():
        assert len(data) < 4096, name
        with open(os.path.join(FUZZ, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(files)} files and {len(expected)} expected images to {OUT}, "
          f"{len(seeds)} seeds to {FUZZ}")


if __name__ == "__main__":
    sys.exit(main())
