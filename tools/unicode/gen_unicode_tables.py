#!/usr/bin/env python3
"""gen_unicode_tables.py — writes src/engine/unicode_tables.c, the Unicode data of the tokenizer.

sdxld's CLIP tokenizer must split and normalise text exactly as transformers' slow CLIPTokenizer
does without ftfy (see src/engine/tokenizer.c). That tokenizer's behaviour is defined by three
pieces of Python, and this script asks each of them directly, code point by code point, rather
than reading the Unicode Character Database files:

  * CPython's unicodedata (BasicTokenizer's control/whitespace tests, NFC) and str methods
    (str.lower() with its multi-character results and Final_Sigma rule, str.isspace() used by
    str.split());
  * transformers' own predicates (_is_control, _is_whitespace, BasicTokenizer._is_chinese_char);
  * the `regex` module, compiled with the CLIP pattern's IGNORECASE flag, for [\\p{L}], [\\p{N}],
    [^\\s\\p{L}\\p{N}] and the pattern's literal letters.

So the tables are those of the interpreter that runs the reference, whatever Unicode version it
has. Run it with the reference virtualenv's Python and commit the result:

    /tmp/refvenv/bin/python tools/unicode/gen_unicode_tables.py > src/engine/unicode_tables.c

The generated file's header records the Python, unicodedata and regex versions. If the reference
is moved to a Python or regex release with other Unicode data, rerun this script: ids can then
change only for text containing characters whose properties differ between the versions
(usually characters new in the later version; unassigned ones are dropped as controls, category
Cn, by the reference itself). The script checks the assumptions src/engine/tokenizer.c relies on
and fails loudly if a new Unicode version breaks one.
"""

import sys
import unicodedata

import regex

try:
    from transformers.models.clip.tokenization_clip import BasicTokenizer
    from transformers.tokenization_utils import _is_control, _is_whitespace
    import transformers
except ImportError as e:  # pragma: no cover - developer tool
    sys.exit(f"gen_unicode_tables.py: needs transformers (the reference venv): {e}")

MAX_CP = 0x10FFFF

# Bit values; src/engine/unicode_tables.h defines the same names (checked by _Static_assert).
FLAGS = {
    "UNICODE_DROP": 0x001,         # removed by BasicTokenizer._clean_text (NUL, U+FFFD, C*)
    "UNICODE_SPACE": 0x002,        # turned into " " by _clean_text (_is_whitespace)
    "UNICODE_CJK": 0x004,          # BasicTokenizer._is_chinese_char: spaces put around it
    "UNICODE_PY_SPACE": 0x008,     # str.isspace(): str.split() separates words there
    "UNICODE_RE_LETTER": 0x010,    # matches [\p{L}] (IGNORECASE)
    "UNICODE_RE_NUMBER": 0x020,    # matches [\p{N}] (IGNORECASE)
    "UNICODE_RE_OTHER": 0x040,     # matches [^\s\p{L}\p{N}] (IGNORECASE)
    "UNICODE_CASE_IGNORABLE": 0x080,  # skipped when str.lower() looks for Final_Sigma context
    "UNICODE_CASED": 0x100,        # cased and not case-ignorable, for the same rule
}

# The CLIP pattern, as in transformers' tokenization_clip.py.
CLIP_PATTERN = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                r"""[^\s\p{L}\p{N}]+""")
LITERALS = "<|>'startofexndvml"  # every character of the pattern's literal alternatives

# Characters first assigned (as letters) in a Unicode version, to name the regex module's data.
REGEX_VERSION_PROBES = [("17.0", 0x16EA0), ("16.0", 0x1E5D0), ("15.1", 0x2EBF0),
                        ("15.0", 0x11F04), ("14.0", 0x10570)]


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


def all_chars_string():
    """Every scalar value in order, and the code point at each string index."""
    cps = [cp for cp in range(MAX_CP + 1) if not is_surrogate(cp)]
    return "".join(map(chr, cps)), cps


def regex_positions(pattern, text, cps):
    return {cps[m.start()] for m in regex.finditer(pattern, text, regex.IGNORECASE | regex.V0)}


def regex_unicode_version():
    for version, cp in REGEX_VERSION_PROBES:
        if regex.fullmatch(r"\p{L}", chr(cp)):
            return version
    return "older than 14.0"


def sigma_classes():
    """(case-ignorable, cased-and-not-ignorable) as str.lower()'s Final_Sigma test sees them.

    CPython lower-cases U+03A3 to U+03C2 when it is preceded by a cased character (skipping
    case-ignorable ones) and not followed by one. Only that behaviour matters, so it is measured
    with three probes per character x (see tokenizer.c): lower(x + Σ), lower("aΣ" + x) and
    lower("a" + x + Σ) end in ς exactly when, respectively, x is cased and not ignorable; x is
    ignorable or not cased; x is ignorable or cased.
    """
    ignorable, cased = set(), set()
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp) or cp == 0x3A3:
            continue
        x = chr(cp)
        t1 = (x + "\u03a3").lower().endswith("\u03c2")
        t2 = ("a\u03a3" + x).lower()[1] == "\u03c2"
        t3 = ("a" + x + "\u03a3").lower().endswith("\u03c2")
        if t2 and t3:
            ignorable.add(cp)
        elif t1:
            cased.add(cp)
    # U+03A3 itself: a capital letter, cased, not ignorable.
    cased.add(0x3A3)
    return ignorable, cased


def class_flags():
    text, cps = all_chars_string()
    letter = regex_positions(r"[\p{L}]", text, cps)
    number = regex_positions(r"[\p{N}]", text, cps)
    other = regex_positions(r"[^\s\p{L}\p{N}]", text, cps)
    ignorable, cased = sigma_classes()
    chinese = BasicTokenizer()._is_chinese_char
    flags = [0] * (MAX_CP + 1)
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp):
            flags[cp] = FLAGS["UNICODE_DROP"]  # cannot come from valid UTF-8
            continue
        c = chr(cp)
        f = 0
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            f |= FLAGS["UNICODE_DROP"]
        if _is_whitespace(c):
            f |= FLAGS["UNICODE_SPACE"]
        if chinese(cp):
            f |= FLAGS["UNICODE_CJK"]
        if c.isspace():
            f |= FLAGS["UNICODE_PY_SPACE"]
        if cp in letter:
            f |= FLAGS["UNICODE_RE_LETTER"]
        if cp in number:
            f |= FLAGS["UNICODE_RE_NUMBER"]
        if cp in other:
            f |= FLAGS["UNICODE_RE_OTHER"]
        if cp in ignorable:
            f |= FLAGS["UNICODE_CASE_IGNORABLE"]
        if cp in cased:
            f |= FLAGS["UNICODE_CASED"]
        flags[cp] = f
    return flags


def runs(values):
    """[(start, value)] where value changes."""
    out = []
    for cp, v in enumerate(values):
        if not out or out[-1][1] != v:
            out.append((cp, v))
    return out


def decompositions():
    """Full canonical decompositions (NFD of one character), Hangul syllables excluded."""
    table = {}
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp) or 0xAC00 <= cp <= 0xD7A3:
            continue
        d = unicodedata.normalize("NFD", chr(cp))
        if d != chr(cp):
            table[cp] = [ord(ch) for ch in d]
    return table


def compositions():
    """Primary composites: (first, second) -> composite, canonical and not excluded."""
    pairs = {}
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp) or 0xAC00 <= cp <= 0xD7A3:
            continue
        dec = unicodedata.decomposition(chr(cp))
        if not dec or dec.startswith("<"):
            continue
        parts = [int(p, 16) for p in dec.split()]
        if len(parts) != 2:
            continue
        if unicodedata.normalize("NFC", chr(cp)) != chr(cp):
            continue  # composition exclusion or non-starter decomposition
        pairs[(parts[0], parts[1])] = cp
    return pairs


def lowercase():
    table = {}
    for cp in range(MAX_CP + 1):
        if is_surrogate(cp):
            continue
        low = chr(cp).lower()
        if low != chr(cp):
            table[cp] = [ord(ch) for ch in low]
    return table


def literal_variants():
    text, cps = all_chars_string()
    out = []
    for lit in LITERALS:
        for cp in sorted(regex_positions(regex.escape(lit), text, cps)):
            if cp != ord(lit):
                out.append((cp, lit))
        if not regex.fullmatch(regex.escape(lit), lit, regex.IGNORECASE):
            sys.exit(f"literal {lit!r} does not match itself")
    if any(not lit.isalpha() for _, lit in out):
        sys.exit("a punctuation literal has case variants: tokenizer.c's match_literal assumes not")
    return sorted(out)


def check_assumptions(flags, decomp, comps, lower):
    """What tokenizer.c relies on to normalise word by word; fail if a Unicode update breaks it."""
    F = FLAGS
    kept = [cp for cp in range(MAX_CP + 1)
            if not flags[cp] & (F["UNICODE_DROP"] | F["UNICODE_SPACE"])]
    py_space = {cp for cp in range(MAX_CP + 1) if flags[cp] & F["UNICODE_PY_SPACE"]}
    problems = []
    for cp in py_space:
        if unicodedata.combining(chr(cp)) or cp in decomp and not flags[cp] & F["UNICODE_SPACE"]:
            problems.append(f"whitespace U+{cp:04X} combines or decomposes")
    for (a, b), c in comps.items():
        if a in py_space or b in py_space or a == 0x20 or b == 0x20:
            problems.append(f"composition U+{a:04X} U+{b:04X} involves whitespace")
    for cp in kept:
        if any(d in py_space for d in decomp.get(cp, [])):
            problems.append(f"U+{cp:04X} decomposes to whitespace")
        if any(d in py_space for d in lower.get(cp, [])):
            problems.append(f"U+{cp:04X} lower-cases to whitespace")
    # unicode.c's shortcuts below these code points.
    combining = [cp for cp in range(MAX_CP + 1)
                 if not is_surrogate(cp) and unicodedata.combining(chr(cp))]
    if min(combining) < 0x300:
        problems.append("a character below U+0300 has a combining class")
    if min(decomp) < 0xC0:
        problems.append("a character below U+00C0 decomposes")
    ascii_lower = {cp: v for cp, v in lower.items() if cp < 0x80}
    if ascii_lower != {cp: [cp + 32] for cp in range(0x41, 0x5B)}:
        problems.append("ASCII lower-casing is not A-Z -> a-z")
    if chr(0x3A3).lower() != "\u03c3" or ("a\u03a3").lower() != "a\u03c2":
        problems.append("str.lower() Final_Sigma behaviour changed")
    both = [cp for cp in kept
            if flags[cp] & F["UNICODE_RE_LETTER"] and flags[cp] & F["UNICODE_RE_OTHER"]]
    if both:
        problems.append(f"{len(both)} characters are both letter and other, e.g. U+{both[0]:04X}")
    if problems:
        sys.exit("gen_unicode_tables.py: assumptions broken:\n  " + "\n  ".join(problems[:20]))


def emit_array(out, ctype, name, rows, per_line, fmt):
    out.append(f"const {ctype} {name}[] = {{")
    for i in range(0, len(rows), per_line):
        out.append("    " + " ".join(fmt(r) + "," for r in rows[i:i + per_line]))
    out.append("};")
    out.append(f"const size_t {name}_count = {len(rows)};")
    out.append("")


def emit_mappings(out, prefix, table):
    pool, rows = [], []
    for cp in sorted(table):
        rows.append((cp, len(pool), len(table[cp])))
        pool.extend(table[cp])
    emit_array(out, "unicode_mapping", f"{prefix}", rows, 4,
               lambda r: f"{{0x{r[0]:05X}, {r[1]}, {r[2]}}}")
    emit_array(out, "uint32_t", f"{prefix}_pool", pool, 8, lambda r: f"0x{r:05X}")


def main():
    flags = class_flags()
    decomp = decompositions()
    comps = compositions()
    lower = lowercase()
    check_assumptions(flags, decomp, comps, lower)
    ccc = [0 if is_surrogate(cp) else unicodedata.combining(chr(cp)) for cp in range(MAX_CP + 1)]
    max_decomp = max(len(v) for v in decomp.values())
    max_lower = max(len(v) for v in lower.values())
    min_second = min(b for (_, b) in comps)

    py = sys.version.split()[0]
    out = [
        "/*",
        " * unicode_tables.c — GENERATED by tools/unicode/gen_unicode_tables.py; do not edit.",
        " *",
        f" * Python {py} (unicodedata {unicodedata.unidata_version}), regex {regex.__version__}"
        f" (Unicode {regex_unicode_version()}),",
        f" * transformers {transformers.__version__}. The data of src/engine/unicode.c: see"
        " unicode_tables.h.",
        " */",
        '#include "engine/unicode_tables.h"',
        "",
    ]
    for name, value in FLAGS.items():
        out.append(f'_Static_assert({name} == 0x{value:03X}, "flag values differ from the '
                   'generator");')
    out.append(f'_Static_assert(UNICODE_MAX_DECOMPOSITION == {max_decomp}, '
               '"regenerate the header");')
    out.append(f'_Static_assert(UNICODE_MAX_LOWER == {max_lower}, "regenerate the header");')
    out.append(f'_Static_assert(UNICODE_MIN_COMPOSITION_SECOND == 0x{min_second:X}, '
               '"unicode.c\'s fast path assumes another value: update the header");')
    out.append("")
    out.append(f'const char unicode_tables_versions[] = "Python {py}, unicodedata '
               f'{unicodedata.unidata_version}, regex {regex.__version__}";')
    out.append("")
    emit_array(out, "uint16_t", "unicode_ascii_flags", flags[:128], 8, lambda r: f"0x{r:03X}")
    emit_array(out, "unicode_class_run", "unicode_class_runs", runs(flags), 6,
               lambda r: f"{{0x{r[0]:05X}, 0x{r[1]:03X}}}")
    emit_array(out, "unicode_ccc_run", "unicode_ccc_runs", runs(ccc), 6,
               lambda r: f"{{0x{r[0]:05X}, {r[1]}}}")
    emit_mappings(out, "unicode_decompositions", decomp)
    emit_array(out, "unicode_composition", "unicode_compositions",
               sorted((a, b, c) for (a, b), c in comps.items()), 3,
               lambda r: f"{{0x{r[0]:05X}, 0x{r[1]:05X}, 0x{r[2]:05X}}}")
    emit_mappings(out, "unicode_lowercase", lower)
    emit_array(out, "unicode_literal_variant", "unicode_literal_variants", literal_variants(), 4,
               lambda r: f"{{0x{r[0]:05X}, '{r[1]}'}}")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
