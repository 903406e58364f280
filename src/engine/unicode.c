/*
 * unicode.c — UTF-8, character classes, NFC and str.lower() for the CLIP tokenizer.
 *
 * Every lookup is a binary search in the generated tables of unicode_tables.c. NFC follows the
 * Unicode algorithm (UAX #15: full canonical decomposition, canonical ordering, canonical
 * composition with blocking), which is what CPython's unicodedata implements; Hangul syllables
 * are decomposed and composed arithmetically as the standard prescribes.
 */
#include "engine/unicode.h"

#include <assert.h>
#include <string.h>

bool utf8_validate(const unsigned char *bytes, size_t len, size_t *bad_offset)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = bytes[i];
        size_t need;
        uint32_t min, cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            need = 1, min = 0x80, cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2, min = 0x800, cp = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3, min = 0x10000, cp = b & 0x07;
        } else {
            *bad_offset = i; /* a continuation byte, C0/C1 (always overlong) or F5..FF */
            return false;
        }
        if (len - i <= need) {
            *bad_offset = i;
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((bytes[i + k] & 0xC0) != 0x80) {
                *bad_offset = i;
                return false;
            }
            cp = (cp << 6) | (bytes[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad_offset = i;
            return false;
        }
        i += need + 1;
    }
    return true;
}

size_t utf8_decode_one(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t utf8_encode_one(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* found = the last run starting at or before cp (runs start at 0, so there is one). */
#define FIND_RUN(runs, count, cp, found)                                                           \
    do {                                                                                           \
        size_t lo_ = 0, hi_ = (count);                                                             \
        while (hi_ - lo_ > 1) {                                                                    \
            size_t mid_ = lo_ + (hi_ - lo_) / 2;                                                   \
            if ((runs)[mid_].start <= (cp))                                                        \
                lo_ = mid_;                                                                        \
            else                                                                                   \
                hi_ = mid_;                                                                        \
        }                                                                                          \
        (found) = lo_;                                                                             \
    } while (0)

unsigned unicode_flags(uint32_t cp)
{
    if (cp < 0x80)
        return unicode_ascii_flags[cp];
    size_t found;
    FIND_RUN(unicode_class_runs, unicode_class_runs_count, cp, found);
    return unicode_class_runs[found].flags;
}

unsigned unicode_ccc(uint32_t cp)
{
    if (cp < 0x300)
        return 0; /* nothing below the combining diacritics block combines */
    size_t found;
    FIND_RUN(unicode_ccc_runs, unicode_ccc_runs_count, cp, found);
    return unicode_ccc_runs[found].ccc;
}

static const unicode_mapping *find_mapping(const unicode_mapping *table, size_t count, uint32_t cp)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < count && table[lo].cp == cp ? &table[lo] : NULL;
}

bool unicode_literal_matches(char literal, uint32_t cp)
{
    if (cp == (unsigned char)literal)
        return true;
    for (size_t i = 0; i < unicode_literal_variants_count; i++) {
        if (unicode_literal_variants[i].cp == cp && unicode_literal_variants[i].literal == literal)
            return true;
    }
    return false;
}

/* Hangul syllables (Unicode chapter 3.12). */
enum {
    HANGUL_S_BASE = 0xAC00,
    HANGUL_L_BASE = 0x1100,
    HANGUL_V_BASE = 0x1161,
    HANGUL_T_BASE = 0x11A7,
    HANGUL_L_COUNT = 19,
    HANGUL_V_COUNT = 21,
    HANGUL_T_COUNT = 28,
    HANGUL_N_COUNT = HANGUL_V_COUNT * HANGUL_T_COUNT,
    HANGUL_S_COUNT = HANGUL_L_COUNT * HANGUL_N_COUNT,
};

static size_t decompose_one(uint32_t cp, uint32_t *out)
{
    if (cp >= HANGUL_S_BASE && cp < HANGUL_S_BASE + HANGUL_S_COUNT) {
        uint32_t s = cp - HANGUL_S_BASE;
        out[0] = HANGUL_L_BASE + s / HANGUL_N_COUNT;
        out[1] = HANGUL_V_BASE + (s % HANGUL_N_COUNT) / HANGUL_T_COUNT;
        if (s % HANGUL_T_COUNT == 0)
            return 2;
        out[2] = HANGUL_T_BASE + s % HANGUL_T_COUNT;
        return 3;
    }
    if (cp >= 0xC0) {
        const unicode_mapping *m =
            find_mapping(unicode_decompositions, unicode_decompositions_count, cp);
        if (m) {
            for (size_t i = 0; i < m->length; i++)
                out[i] = unicode_decompositions_pool[m->offset + i];
            return m->length;
        }
    }
    out[0] = cp;
    return 1;
}

/* The primary composite of first + second, or 0 when they do not compose. */
static uint32_t compose_pair(uint32_t first, uint32_t second)
{
    if (first >= HANGUL_L_BASE && first < HANGUL_L_BASE + HANGUL_L_COUNT &&
        second >= HANGUL_V_BASE && second < HANGUL_V_BASE + HANGUL_V_COUNT)
        return HANGUL_S_BASE +
               ((first - HANGUL_L_BASE) * HANGUL_V_COUNT + (second - HANGUL_V_BASE)) *
                   HANGUL_T_COUNT;
    if (first >= HANGUL_S_BASE && first < HANGUL_S_BASE + HANGUL_S_COUNT &&
        (first - HANGUL_S_BASE) % HANGUL_T_COUNT == 0 && second > HANGUL_T_BASE &&
        second < HANGUL_T_BASE + HANGUL_T_COUNT)
        return first + (second - HANGUL_T_BASE);
    if (second < UNICODE_MIN_COMPOSITION_SECOND)
        return 0;
    size_t lo = 0, hi = unicode_compositions_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unicode_composition *c = &unicode_compositions[mid];
        if (c->first < first || (c->first == first && c->second < second))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < unicode_compositions_count && unicode_compositions[lo].first == first &&
        unicode_compositions[lo].second == second)
        return unicode_compositions[lo].composite;
    return 0;
}

/* During NFC each code point carries its combining class above its 21 bits. */
#define CP_BITS 21
#define CP_MASK ((1u << CP_BITS) - 1)

/* Stable sort of packed[0..n) by combining class: insertion sort for the usual short runs, a
 * counting sort through work for long ones (a prompt of many marks must not take n^2 time). */
static void sort_by_class(uint32_t *packed, size_t n, uint32_t *work)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = packed[i];
            size_t j = i;
            while (j > 0 && (packed[j - 1] >> CP_BITS) > (v >> CP_BITS)) {
                packed[j] = packed[j - 1];
                j--;
            }
            packed[j] = v;
        }
        return;
    }
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++)
        start[(packed[i] >> CP_BITS) + 1]++;
    for (size_t c = 1; c <= 256; c++)
        start[c] += start[c - 1];
    for (size_t i = 0; i < n; i++)
        work[start[packed[i] >> CP_BITS]++] = packed[i];
    memcpy(packed, work, n * sizeof *packed);
}

size_t unicode_nfc(const uint32_t *in, size_t n, uint32_t *out, uint32_t *work)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = decompose_one(in[i], out + m);
        for (size_t j = m; j < m + k; j++)
            out[j] |= (uint32_t)unicode_ccc(out[j]) << CP_BITS;
        m += k;
    }

    /* Canonical ordering: each run of non-starters sorted by combining class. */
    for (size_t i = 0; i < m;) {
        if ((out[i] >> CP_BITS) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < m && (out[j] >> CP_BITS) != 0)
            j++;
        sort_by_class(out + i, j - i, work);
        i = j;
    }

    /* Canonical composition. last_class is the class of the last character kept after the
     * current starter (0: none, the next character is adjacent to the starter); 256 before the
     * first starter, so nothing composes with a leading non-starter. */
    if (m == 0)
        return 0;
    size_t starter = 0, kept = 1;
    unsigned last_class = (out[0] >> CP_BITS) == 0 ? 0 : 256;
    out[0] &= CP_MASK;
    for (size_t i = 1; i < m; i++) {
        uint32_t cp = out[i] & CP_MASK;
        unsigned c = out[i] >> CP_BITS;
        uint32_t composite = last_class == 256 ? 0 : compose_pair(out[starter], cp);
        if (composite && (last_class < c || last_class == 0)) {
            out[starter] = composite;
            continue;
        }
        if (c == 0)
            starter = kept;
        last_class = c;
        out[kept++] = cp;
    }
    return kept;
}

/* CPython's Final_Sigma test for the U+03A3 at in[i]: a cased letter before it and none after
 * it, case-ignorable characters skipped on both sides. */
static bool is_final_sigma(const uint32_t *in, size_t n, size_t i)
{
    size_t j = i;
    unsigned f = 0;
    for (;;) {
        if (j == 0)
            return false;
        f = unicode_flags(in[--j]);
        if (!(f & UNICODE_CASE_IGNORABLE))
            break;
    }
    if (!(f & UNICODE_CASED))
        return false;
    for (j = i + 1; j < n; j++) {
        f = unicode_flags(in[j]);
        if (!(f & UNICODE_CASE_IGNORABLE))
            return !(f & UNICODE_CASED);
    }
    return true;
}

size_t unicode_lower(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        if (cp == 0x3A3) {
            out[m++] = is_final_sigma(in, n, i) ? 0x3C2 : 0x3C3;
            continue;
        }
        if (cp < 0x80) {
            out[m++] = cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
            continue;
        }
        const unicode_mapping *map = find_mapping(unicode_lowercase, unicode_lowercase_count, cp);
        if (!map) {
            out[m++] = cp;
            continue;
        }
        assert(map->length <= UNICODE_MAX_LOWER);
        for (size_t k = 0; k < map->length; k++)
            out[m++] = unicode_lowercase_pool[map->offset + k];
    }
    return m;
}
