/*
 * unicode.h — the Unicode operations of the CLIP tokenizer, with the reference's semantics.
 *
 * UTF-8 as Python's strict decoder reads it; character classes as transformers' BasicTokenizer
 * and the `regex` module see them; NFC as unicodedata.normalize("NFC") computes it; lower-casing
 * as str.lower() does it (full mappings such as U+0130 -> "i" U+0307, and Final_Sigma).
 * The data comes from unicode_tables.c (generated from the reference environment).
 */
#ifndef SDXL_ENGINE_UNICODE_H
#define SDXL_ENGINE_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/unicode_tables.h"

/* Whether bytes[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence). When not, *bad_offset is the offset of the first byte of the
 * first ill-formed sequence. */
bool utf8_validate(const unsigned char *bytes, size_t len, size_t *bad_offset);

/* Decodes the code point at s, which must start a well-formed sequence; returns its length. */
size_t utf8_decode_one(const unsigned char *s, uint32_t *cp);

/* Encodes cp (a Unicode scalar value) into out; returns the number of bytes (1..4). */
size_t utf8_encode_one(uint32_t cp, unsigned char out[4]);

/* UNICODE_* class bits of cp. */
unsigned unicode_flags(uint32_t cp);

/* Canonical combining class of cp. */
unsigned unicode_ccc(uint32_t cp);

/* Whether cp matches the pattern literal `literal` (an ASCII character) case-insensitively as
 * the regex module matches it: e.g. 's' matches s, S and U+017F. */
bool unicode_literal_matches(char literal, uint32_t cp);

/* NFC of in[0..n) into out; out and work (working space) each have room for
 * n * UNICODE_MAX_DECOMPOSITION code points. Returns the output length. Linear time. None of the
 * three arrays may overlap. */
size_t unicode_nfc(const uint32_t *in, size_t n, uint32_t *out, uint32_t *work);

/* Python's str.lower() of in[0..n) into out, which has room for n * UNICODE_MAX_LOWER code
 * points; returns the output length. The whole array is the string whose context decides
 * Final_Sigma (U+03A3 -> U+03C2 at the end of a word). in and out must not overlap. */
size_t unicode_lower(const uint32_t *in, size_t n, uint32_t *out);

#endif /* SDXL_ENGINE_UNICODE_H */
