/*
 * test_safetensors.c — the safetensors reader and writer: round trips of every dtype and of
 * 0-d, 1-d, 4-d and empty tensors, streaming in odd chunks, metadata, lookup by name, a file
 * written by Python's safetensors (read, and rewritten byte for byte), and a table of
 * malformed files that must each be refused with the right code and a message naming the
 * problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "support/paths.h"
#include "support/read_file.h"
#include "support/remove_tree.h"

static char temp_dir[512];

static int make_temp_dir(void **state)
{
    return test_make_temp_dir(temp_dir, sizeof temp_dir) == SDXL_OK ? 0 : -1;
}

static int remove_temp_dir(void **state)
{
    return test_remove_tree(temp_dir);
}

static void temp_path(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", temp_dir, name);
}

static bool file_exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

static uint8_t *read_back(const char *path, size_t *size)
{
    uint8_t *bytes = test_read_file(path, size);
    assert_non_null(bytes);
    return bytes;
}

/* The file as safetensors_parse sees it, in a buffer of exactly size bytes (so ASan sees any
 * read past its end): the 8-byte little-endian length `declared`, the header, then zero data
 * bytes; cut short when size is smaller than all of that. */
static uint8_t *file_image(const char *header, uint64_t declared, size_t size)
{
    uint8_t *image = calloc(1, size ? size : 1);
    assert_non_null(image);
    uint8_t length[8];
    for (int b = 0; b < 8; b++)
        length[b] = (uint8_t)(declared >> (8 * b));
    memcpy(image, length, size < 8 ? size : 8);
    size_t header_len = strlen(header);
    if (size > 8)
        memcpy(image + 8, header, size - 8 < header_len ? size - 8 : header_len);
    return image;
}

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(bytes, 1, n, out), n);
    assert_int_equal(fclose(out), 0);
}

static uint64_t header_length(const uint8_t *file)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | file[i];
    return n;
}

static size_t info_nbytes(const st_tensor_info *t)
{
    size_t n = dtype_size(t->type);
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* Four tensors per dtype (0-d, 1-d, 4-d, empty), listed in reverse name order so the reader
 * has to sort them; data bytes are a pattern that differs per tensor. */
enum { SHAPES_PER_DTYPE = 4, N_ROUND_TRIP = SHAPES_PER_DTYPE * DTYPE_COUNT };

typedef struct round_trip_set {
    char names[N_ROUND_TRIP][32];
    st_tensor_info info[N_ROUND_TRIP];
    uint8_t *data[N_ROUND_TRIP];
} round_trip_set;

static void round_trip_set_init(round_trip_set *s)
{
    static const struct {
        const char *suffix;
        int ndim;
        int64_t shape[4];
    } shapes[SHAPES_PER_DTYPE] = {
        {"scalar", 0, {0}}, {"vector", 1, {5}}, {"nhwc", 4, {2, 3, 1, 2}}, {"empty", 2, {3, 0}},
    };
    memset(s, 0, sizeof *s);
    for (int i = 0; i < N_ROUND_TRIP; i++) {
        int t = i / SHAPES_PER_DTYPE, k = i % SHAPES_PER_DTYPE;
        int slot = N_ROUND_TRIP - 1 - i;
        snprintf(s->names[slot], sizeof s->names[slot], "%s.%s", dtype_name((dtype)t),
                 shapes[k].suffix);
        st_tensor_info *info = &s->info[slot];
        info->name = s->names[slot];
        info->type = (dtype)t;
        info->ndim = shapes[k].ndim;
        memcpy(info->shape, shapes[k].shape, sizeof shapes[k].shape);
        size_t n = info_nbytes(info);
        s->data[slot] = malloc(n + 1);
        assert_non_null(s->data[slot]);
        for (size_t b = 0; b < n; b++)
            s->data[slot][b] = (uint8_t)(b * 37 + (size_t)i * 11 + 1);
    }
}

static void round_trip_set_free(round_trip_set *s)
{
    for (int i = 0; i < N_ROUND_TRIP; i++)
        free(s->data[i]);
}

static void test_round_trip_every_dtype_and_shape(void **state)
{
    round_trip_set s;
    round_trip_set_init(&s);
    char path[1024];
    temp_path("round_trip.safetensors", path, sizeof path);
    sdxl_error err;
    assert_int_equal(safetensors_write_file(path, s.info, (const void *const *)s.data,
                                            N_ROUND_TRIP, NULL, &err),
                     SDXL_OK);

    safetensors_file f;
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    assert_int_equal(f.n_tensors, N_ROUND_TRIP);
    assert_int_equal(f.n_metadata, 0);
    for (size_t i = 1; i < f.n_tensors; i++)
        assert_true(strcmp(f.tensors[i - 1].name, f.tensors[i].name) < 0);
    for (int i = 0; i < N_ROUND_TRIP; i++) {
        const st_tensor *t = safetensors_find(&f, s.names[i]);
        assert_non_null(t);
        assert_string_equal(t->name, s.names[i]);
        assert_int_equal(t->type, s.info[i].type);
        assert_int_equal(t->ndim, s.info[i].ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_int_equal(t->shape[d], s.info[i].shape[d]);
            numel *= (size_t)t->shape[d];
        }
        assert_int_equal(t->numel, numel);
        assert_int_equal(t->nbytes, info_nbytes(&s.info[i]));
        if (t->nbytes)
            assert_memory_equal(t->data, s.data[i], t->nbytes);
    }
    /* The data section is 8-aligned and the header is what safetensors' writer produces. */
    size_t size;
    uint8_t *bytes = read_back(path, &size);
    assert_int_equal(header_length(bytes) % 8, 0);
    static const char first[] = "{\"F64.empty\":{\"dtype\":\"F64\",\"shape\":[3,0],";
    assert_memory_equal(bytes + 8, first, sizeof first - 1);
    assert_int_equal(f.map_size, size);
    free(bytes);
    safetensors_close(&f);
    assert_null(f.tensors);
    round_trip_set_free(&s);
}

/* Data given in chunks that ignore tensor boundaries gives the same file as the one-shot
 * writer; the final path appears only at close. */
static void test_streaming_writer_matches_one_shot(void **state)
{
    round_trip_set s;
    round_trip_set_init(&s);
    char one_shot[1024], streamed[1024], streamed_tmp[1040];
    temp_path("one_shot.safetensors", one_shot, sizeof one_shot);
    temp_path("streamed.safetensors", streamed, sizeof streamed);
    snprintf(streamed_tmp, sizeof streamed_tmp, "%s.tmp", streamed);
    sdxl_error err;
    assert_int_equal(safetensors_write_file(one_shot, s.info, (const void *const *)s.data,
                                            N_ROUND_TRIP, NULL, &err),
                     SDXL_OK);

    size_t total = 0;
    for (int i = 0; i < N_ROUND_TRIP; i++)
        total += info_nbytes(&s.info[i]);
    uint8_t *all = malloc(total);
    assert_non_null(all);
    size_t at = 0;
    for (int i = 0; i < N_ROUND_TRIP; i++) {
        memcpy(all + at, s.data[i], info_nbytes(&s.info[i]));
        at += info_nbytes(&s.info[i]);
    }
    safetensors_writer w;
    assert_int_equal(safetensors_writer_open(&w, streamed, s.info, N_ROUND_TRIP, NULL, &err),
                     SDXL_OK);
    assert_int_equal(w.data_bytes, total);
    static const size_t chunks[] = {1, 3, 7, 0, 13, 64};
    for (size_t off = 0, c = 0; off < total; c++) {
        size_t n = chunks[c % 6] < total - off ? chunks[c % 6] : total - off;
        assert_int_equal(safetensors_writer_write(&w, all + off, n, &err), SDXL_OK);
        off += n;
    }
    assert_true(file_exists(streamed_tmp));
    assert_false(file_exists(streamed));
    assert_int_equal(safetensors_writer_close(&w, &err), SDXL_OK);
    assert_false(file_exists(streamed_tmp));

    size_t size_a, size_b;
    uint8_t *a = read_back(one_shot, &size_a);
    uint8_t *b = read_back(streamed, &size_b);
    assert_int_equal(size_a, size_b);
    assert_memory_equal(a, b, size_a);
    free(a);
    free(b);
    free(all);
    round_trip_set_free(&s);
}

static void assert_no_output(const char *path)
{
    char tmp[1040];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
}

static void test_writer_refuses_wrong_byte_counts(void **state)
{
    st_tensor_info info = {.name = "w", .type = DTYPE_F32, .ndim = 1, .shape = {2}};
    uint8_t bytes[12] = {0};
    char path[1024];
    temp_path("counts.safetensors", path, sizeof path);
    sdxl_error err;
    safetensors_writer w;

    assert_int_equal(safetensors_writer_open(&w, path, &info, 1, NULL, &err), SDXL_OK);
    assert_int_equal(safetensors_writer_write(&w, bytes, 4, &err), SDXL_OK);
    assert_int_equal(safetensors_writer_write(&w, bytes, 8, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "writing 8 more bytes after 4 would pass the 8 bytes"));
    assert_no_output(path);
    assert_int_equal(safetensors_writer_close(&w, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "not open"));
    safetensors_writer_abort(&w);

    assert_int_equal(safetensors_writer_open(&w, path, &info, 1, NULL, &err), SDXL_OK);
    assert_int_equal(safetensors_writer_write(&w, bytes, 4, &err), SDXL_OK);
    assert_int_equal(safetensors_writer_close(&w, &err), SDXL_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "only 4 of the 8 data bytes"));
    assert_no_output(path);

    assert_int_equal(safetensors_writer_open(&w, path, &info, 1, NULL, &err), SDXL_OK);
    assert_int_equal(safetensors_writer_write(&w, bytes, 8, &err), SDXL_OK);
    safetensors_writer_abort(&w);
    assert_no_output(path);
    safetensors_writer_abort(&w);
}

static void test_writer_refuses_bad_tensors(void **state)
{
    static const struct {
        st_tensor_info info[2];
        size_t n;
        const char *metadata[5];
        sdxl_status code;
        const char *message;
    } cases[] = {
        {{{.name = "a", .ndim = 1, .shape = {1}}, {.name = "a", .ndim = 1, .shape = {1}}}, 2,
         {NULL}, SDXL_ERR_INVALID_ARGUMENT, "tensor \"a\": given twice"},
        {{{.name = "a", .ndim = 9}}, 1, {NULL}, SDXL_ERR_INVALID_ARGUMENT, "ndim 9"},
        {{{.name = "a", .ndim = 2, .shape = {2, -3}}}, 1, {NULL}, SDXL_ERR_INVALID_ARGUMENT,
         "dimension 1 is negative (-3)"},
        {{{.name = "__metadata__", .ndim = 0}}, 1, {NULL}, SDXL_ERR_INVALID_ARGUMENT,
         "other than \"__metadata__\""},
        {{{.name = "a", .type = (dtype)DTYPE_COUNT}}, 1, {NULL}, SDXL_ERR_INVALID_ARGUMENT,
         "unknown dtype value"},
        {{{.name = "a", .ndim = 3, .shape = {INT64_MAX, INT64_MAX, 2}}}, 1, {NULL},
         SDXL_ERR_INVALID_ARGUMENT, "larger than 2^53 bytes"},
        {{{.name = "bad \xff name"}}, 1, {NULL}, SDXL_ERR_INVALID_ARGUMENT, "UTF-8"},
        {{{.name = "a"}}, 1, {"k", "1", "k", "2", NULL}, SDXL_ERR_INVALID_ARGUMENT,
         "metadata key \"k\" given twice"},
        {{{.name = "a"}}, 1, {"k", NULL}, SDXL_ERR_INVALID_ARGUMENT, "metadata entry 0"},
    };
    char path[1024];
    temp_path("refused.safetensors", path, sizeof path);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        safetensors_writer w;
        sdxl_error err;
        const char *const *metadata = cases[i].metadata[0] ? cases[i].metadata : NULL;
        assert_int_equal(safetensors_writer_open(&w, path, cases[i].info, cases[i].n, metadata,
                                                 &err),
                         cases[i].code);
        if (!strstr(err.message, cases[i].message))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, cases[i].message);
        assert_no_output(path);
        safetensors_writer_abort(&w);
    }

    sdxl_error err;
    st_tensor_info info = {.name = "a"};
    uint8_t byte = 0;
    const void *data[] = {&byte};
    assert_int_equal(safetensors_write_file("/nonexistent-dir/x.safetensors", &info, data, 0,
                                            NULL, &err),
                     SDXL_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent-dir/x.safetensors.tmp: cannot create"));
}

static void test_metadata_round_trip_and_header_order(void **state)
{
    st_tensor_info info[2] = {{.name = "zeta", .type = DTYPE_U8, .ndim = 1, .shape = {3}},
                              {.name = "alpha", .type = DTYPE_U8, .ndim = 1, .shape = {1}}};
    uint8_t zeta[3] = {1, 2, 3}, alpha[1] = {9};
    const void *data[] = {zeta, alpha};
    const char *metadata[] = {"prompt.0", "a cat, \"quoted\"\n\x01\x7f\\", "format", "pt",
                              "empty", "", "unicode", "\xc3\xa9\xe2\x82\xac", NULL};
    char path[1024];
    temp_path("metadata.safetensors", path, sizeof path);
    sdxl_error err;
    assert_int_equal(safetensors_write_file(path, info, data, 2, metadata, &err), SDXL_OK);

    size_t size;
    uint8_t *bytes = read_back(path, &size);
    static const char expected[] =
        "{\"__metadata__\":{\"prompt.0\":\"a cat, \\\"quoted\\\"\\n\\u0001\x7f\\\\\","
        "\"format\":\"pt\","
        "\"empty\":\"\",\"unicode\":\"\xc3\xa9\xe2\x82\xac\"},"
        "\"zeta\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
        "\"alpha\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}";
    uint64_t n = header_length(bytes);
    assert_int_equal(n, (sizeof expected - 1 + 7) / 8 * 8);
    assert_memory_equal(bytes + 8, expected, sizeof expected - 1);
    for (size_t i = 8 + sizeof expected - 1; i < 8 + n; i++)
        assert_int_equal(bytes[i], ' ');
    assert_int_equal(size, 8 + n + 4);
    assert_memory_equal(bytes + 8 + n, "\x01\x02\x03\x09", 4);
    free(bytes);

    safetensors_file f;
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    assert_int_equal(f.n_metadata, 4);
    assert_string_equal(safetensors_metadata(&f, "prompt.0"), "a cat, \"quoted\"\n\x01\x7f\\");
    assert_string_equal(safetensors_metadata(&f, "format"), "pt");
    assert_string_equal(safetensors_metadata(&f, "empty"), "");
    assert_string_equal(safetensors_metadata(&f, "unicode"), "\xc3\xa9\xe2\x82\xac");
    assert_null(safetensors_metadata(&f, "prompt.1"));
    assert_null(safetensors_metadata(&f, "zeta"));
    assert_string_equal(f.tensors[0].name, "alpha");
    assert_int_equal(*(const uint8_t *)f.tensors[0].data, 9);
    safetensors_close(&f);

    /* No metadata: no "__metadata__" key at all, as Python writes with metadata=None. */
    assert_int_equal(safetensors_write_file(path, info, data, 2, NULL, &err), SDXL_OK);
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    assert_int_equal(f.n_metadata, 0);
    assert_null(safetensors_metadata(&f, "format"));
    assert_null(memmem(f.map, f.map_size, "__metadata__", 12));
    safetensors_close(&f);

    /* An empty list: an empty "__metadata__" object, as Python writes with metadata={}. */
    const char *no_entries[] = {NULL};
    assert_int_equal(safetensors_write_file(path, info, data, 2, no_entries, &err), SDXL_OK);
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    assert_int_equal(f.n_metadata, 0);
    assert_memory_equal((const uint8_t *)f.map + 8, "{\"__metadata__\":{},\"zeta\":", 25);
    safetensors_close(&f);
}

static void test_find_by_binary_search(void **state)
{
    enum { N = 300 };
    st_tensor_info info[N];
    char names[N][16];
    int32_t values[N];
    const void *data[N];
    for (int i = 0; i < N; i++) {
        /* A permutation of 0..N-1, so the names are in no particular order. */
        int k = (i * 7 + 3) % N;
        snprintf(names[i], sizeof names[i], "t.%d", k);
        info[i] = (st_tensor_info){.name = names[i], .type = DTYPE_I32, .ndim = 1, .shape = {1}};
        values[i] = k * 10;
        data[i] = &values[i];
    }
    char path[1024];
    temp_path("find.safetensors", path, sizeof path);
    sdxl_error err;
    assert_int_equal(safetensors_write_file(path, info, data, N, NULL, &err), SDXL_OK);
    safetensors_file f;
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    for (int k = 0; k < N; k++) {
        char name[16];
        snprintf(name, sizeof name, "t.%d", k);
        const st_tensor *t = safetensors_find(&f, name);
        assert_non_null(t);
        int32_t v;
        memcpy(&v, t->data, sizeof v);
        assert_int_equal(v, k * 10);
    }
    assert_null(safetensors_find(&f, "t."));
    assert_null(safetensors_find(&f, "t.300"));
    assert_null(safetensors_find(&f, ""));
    safetensors_close(&f);

    safetensors_file empty;
    assert_int_equal(safetensors_parse(&empty, "\x08\0\0\0\0\0\0\0{}      ", 16, "empty", &err),
                     SDXL_OK);
    assert_int_equal(empty.n_tensors, 0);
    assert_null(safetensors_find(&empty, "t.1"));
    safetensors_close(&empty);
}

static int compare_by_position(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->data != y->data)
        return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* tests/unit/data/python_written.safetensors came from safetensors.torch.save_file (see
 * tests/unit/data/README.md). We read its values, then write the same tensors in the same
 * order and must get the same bytes. */
static void test_reads_and_rewrites_python_file(void **state)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/data/python_written.safetensors",
             test_source_dir());
    safetensors_file f;
    sdxl_error err;
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_OK);
    assert_int_equal(f.n_tensors, 10);
    assert_string_equal(safetensors_metadata(&f, "format"), "pt");

    const st_tensor *t = safetensors_find(&f, "unet.conv_in.weight");
    assert_non_null(t);
    assert_int_equal(t->type, DTYPE_F32);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[3], 3);
    float f32[6];
    dtype_to_f32(t->type, t->data, f32, 6);
    for (int i = 0; i < 6; i++)
        assert_true(f32[i] == (float)i / 4 - 1);

    t = safetensors_find(&f, "half");
    assert_int_equal(t->type, DTYPE_F16);
    float half[4];
    dtype_to_f32(t->type, t->data, half, 4);
    assert_true(half[0] == 0.5f && half[1] == -1.0f && half[2] == 65504.0f &&
                half[3] == 0x1p-24f);

    t = safetensors_find(&f, "brain");
    assert_int_equal(t->type, DTYPE_BF16);
    assert_int_equal(t->ndim, 2);
    float brain[4];
    dtype_to_f32(t->type, t->data, brain, 4);
    assert_true(brain[0] == 1.0f && brain[1] == -0.5f && brain[2] == 3.140625f &&
                brain[3] == -0x1p100f);

    t = safetensors_find(&f, "ids");
    assert_int_equal(t->type, DTYPE_I64);
    int64_t ids[3];
    memcpy(ids, t->data, sizeof ids);
    assert_true(ids[0] == 1 && ids[1] == -2 && ids[2] == (int64_t)1 << 40);

    t = safetensors_find(&f, "i32");
    assert_int_equal(t->type, DTYPE_I32);
    int32_t i32[2];
    memcpy(i32, t->data, sizeof i32);
    assert_true(i32[0] == -7 && i32[1] == INT32_MAX);

    t = safetensors_find(&f, "bytes");
    assert_int_equal(t->type, DTYPE_U8);
    assert_memory_equal(t->data, "\x00\x01\x7f\x80\xff", 5);

    t = safetensors_find(&f, "double");
    assert_int_equal(t->type, DTYPE_F64);
    double f64[2];
    memcpy(f64, t->data, sizeof f64);
    assert_true(f64[0] == 0.1 && f64[1] == -1e300);

    t = safetensors_find(&f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float scalar;
    memcpy(&scalar, t->data, sizeof scalar);
    assert_true(scalar == 7.0f);

    t = safetensors_find(&f, "empty");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->nbytes, 0);

    t = safetensors_find(&f, "odd \"name\"\t\xc3\xa9");
    assert_non_null(t);
    float odd;
    memcpy(&odd, t->data, sizeof odd);
    assert_true(odd == 42.0f);

    /* Python orders tensors by dtype, then name; take its order from the data offsets. */
    const st_tensor *order[10];
    for (size_t i = 0; i < 10; i++)
        order[i] = &f.tensors[i];
    qsort(order, 10, sizeof order[0], compare_by_position);
    st_tensor_info info[10];
    const void *data[10];
    for (size_t i = 0; i < 10; i++) {
        info[i] = (st_tensor_info){.name = order[i]->name, .type = order[i]->type,
                                   .ndim = order[i]->ndim};
        memcpy(info[i].shape, order[i]->shape, sizeof info[i].shape);
        data[i] = order[i]->data;
    }
    const char *metadata[] = {"format", "pt", NULL};
    char copy[1024];
    temp_path("python_copy.safetensors", copy, sizeof copy);
    assert_int_equal(safetensors_write_file(copy, info, data, 10, metadata, &err), SDXL_OK);
    size_t size;
    uint8_t *bytes = read_back(copy, &size);
    assert_int_equal(size, f.map_size);
    assert_memory_equal(bytes, f.map, size);
    free(bytes);
    safetensors_close(&f);
}

static void test_open_errors(void **state)
{
    safetensors_file f;
    sdxl_error err;
    char path[1024];
    temp_path("missing.safetensors", path, sizeof path);
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, path));
    assert_null(f.tensors);

    assert_int_equal(safetensors_open(&f, temp_dir, &err), SDXL_ERR_IO);
    assert_non_null(strstr(err.message, "not a regular file"));

    temp_path("zero.safetensors", path, sizeof path);
    write_file(path, "", 0);
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "zero.safetensors: file is 0 bytes"));
    assert_null(f.map);

    /* A damaged file on disk is refused and unmapped the same way as an image in memory. */
    temp_path("damaged.safetensors", path, sizeof path);
    write_file(path, "\x10\0\0\0\0\0\0\0{\"a\":{}}        ", 24);
    assert_int_equal(safetensors_open(&f, path, &err), SDXL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "damaged.safetensors: tensor \"a\": missing \"dtype\""));
    assert_null(f.map);
    assert_null(f.tensors);
}

/* A malformed file: header JSON (its length written in front unless declared_length is set),
 * then data_bytes zero bytes, cut to file_size bytes when that is set. */
typedef struct malformed_case {
    const char *header;
    size_t data_bytes;
    uint64_t declared_length;
    size_t file_size;
    sdxl_status code;
    const char *message;
} malformed_case;

#define ENTRY(name, dtype, shape, begin, end)                                                  \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #begin "," #end \
    "]}"

/* Most cases: the whole file (no length or size of its own) is refused as SDXL_ERR_FORMAT; many
 * of them hold one F32 tensor "a". */
#define BAD(header, data_bytes, message) {header, data_bytes, 0, 0, SDXL_ERR_FORMAT, message}
#define BAD_F32_A(shape, begin, end, data_bytes, message)                                      \
    BAD("{" ENTRY("a", "F32", shape, begin, end) "}", data_bytes, message)

static const malformed_case malformed_cases[] = {
    {"{}", 0, 0, 5, SDXL_ERR_FORMAT, "file is 5 bytes, shorter than the 8-byte header length"},
    {"{}", 0, 1000, 0, SDXL_ERR_FORMAT, "header length 1000 runs past the end of the file"},
    {"{}", 0, 100000001, 0, SDXL_ERR_FORMAT, "header length 100000001 is over the limit"},
    BAD("", 0, "header is not valid JSON"),
    BAD("{\"a\": ", 0, "header is not valid JSON"),
    BAD("[1, 2]", 0, "header is an array, not a JSON object"),
    BAD("{} x", 0, "bytes after its JSON object (at byte 3"),
    BAD("{\"\xff\":{}}", 0, "header is not valid UTF-8"),
    BAD("{\"\xed\xa0\x80\":{}}", 0, "header is not valid UTF-8"),
    BAD("{\"a\":5}", 0, "tensor \"a\": expected an object"),
    BAD("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor \"a\": missing \"dtype\""),
    BAD("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor \"a\": missing \"shape\""),
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor \"a\": missing \"data_offsets\""),
    {"{" ENTRY("a", "F8_E4M3", "[4]", 0, 4) "}", 4, 0, 0, SDXL_ERR_UNSUPPORTED,
     "tensor \"a\": dtype \"F8_E4M3\" is not supported (sdxld reads F32, F16, BF16"},
    BAD("{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "\"dtype\" must be a string"),
    BAD_F32_A("[-1]", 0, 4, 4, "tensor \"a\": shape dimension 0 is -1"),
    BAD_F32_A("[1, 2.5]", 0, 4, 4, "shape dimension 1 is 2.5"),
    BAD_F32_A("[1e20]", 0, 4, 4, "shape dimension 0 is 1e+20"),
    BAD_F32_A("[\"4\"]", 0, 4, 4, "shape dimension 0 is a string"),
    BAD_F32_A("4", 0, 4, 4, "\"shape\" must be an array of integers, not a number"),
    {"{" ENTRY("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, 0, 0, SDXL_ERR_UNSUPPORTED,
     "shape has more than 8 dimensions"},
    BAD_F32_A("[4294967296, 4294967296, 2]", 0, 0, 0,
              "shape [4294967296, 4294967296, 2] × F32 is more than 2^64 bytes"),
    BAD("{" ENTRY("conv_in.weight", "F16", "[320, 4, 3, 3]", 0, 23038) "}", 23038,
        "bad.safetensors: tensor \"conv_in.weight\": shape [320, 4, 3, 3] × F16 is 23040 bytes "
        "but data_offsets span 23038"),
    BAD_F32_A("[]", 0, 0, 0, "shape [] × F32 is 4 bytes but data_offsets span 0"),
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
        "\"data_offsets\" must be an array of two integers"),
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
        "\"data_offsets\" must be an array of two integers"),
    BAD_F32_A("[1]", 0, 4.5, 4, "data_offsets end is 4.5"),
    BAD_F32_A("[1]", -4, 0, 4, "data_offsets begin is -4"),
    BAD_F32_A("[1]", 0, 18014398509481984, 4, "data_offsets end is 18014398509481984"),
    BAD_F32_A("[1]", 4, 0, 4, "data_offsets [4, 0] end before they begin"),
    BAD("{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[2]", 4, 12) "}", 12,
        "tensor \"b\": data_offsets [4, 12] overlap tensor \"a\", which ends at 8"),
    BAD("{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[2]", 0, 8) "}", 8,
        "tensor \"b\": data_offsets [0, 8] overlap tensor \"a\""),
    BAD("{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("e", "F32", "[0]", 4, 4) "}", 8,
        "tensor \"e\": data_offsets [4, 4] overlap tensor \"a\""),
    BAD("{" ENTRY("a", "F32", "[1]", 0, 4) "," ENTRY("b", "F32", "[1]", 8, 12) "}", 12,
        "bytes [4, 8) of the data section belong to no tensor (a hole before tensor \"b\")"),
    BAD("{" ENTRY("b", "F32", "[1]", 4, 8) "}", 8,
        "bytes [0, 4) of the data section belong to no tensor"),
    BAD_F32_A("[1]", 0, 4, 8,
              "bytes [4, 8) of the data section belong to no tensor (trailing bytes"),
    BAD_F32_A("[2]", 0, 8, 4,
              "tensor \"a\": data_offsets [0, 8] run past the end of the data section (4 bytes)"),
    BAD("{" ENTRY("a", "F32", "[1]", 0, 4) "," ENTRY("a", "F32", "[1]", 4, 8) "}", 8,
        "tensor \"a\": the name appears twice"),
    BAD("{\"__metadata__\":{\"k\":1}}", 0,
        "__metadata__ key \"k\": value is a number, but metadata values must be strings"),
    BAD("{\"__metadata__\":{\"k\":\"v\",\"j\":null}}", 0, "__metadata__ key \"j\": value is null"),
    BAD("{\"__metadata__\":[\"k\"]}", 0,
        "\"__metadata__\" is an array, but it must be an object of strings"),
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "\"__metadata__\" appears twice"),
    BAD("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "__metadata__ key \"k\" appears twice"),
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
        "tensor \"a\": unknown key \"extra\""),
    BAD("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor \"a\": key \"dtype\" appears twice"),
};

static void test_malformed_files_are_refused(void **state)
{
    for (size_t i = 0; i < sizeof malformed_cases / sizeof malformed_cases[0]; i++) {
        const malformed_case *c = &malformed_cases[i];
        size_t header_len = strlen(c->header);
        size_t size = c->file_size ? c->file_size : 8 + header_len + c->data_bytes;
        uint64_t declared = c->declared_length ? c->declared_length : header_len;
        uint8_t *exact = file_image(c->header, declared, size);

        safetensors_file f;
        sdxl_error err = {.code = SDXL_OK};
        sdxl_status st = safetensors_parse(&f, exact, size, "bad.safetensors", &err);
        if (st != c->code || err.code != c->code || !strstr(err.message, c->message) ||
            strncmp(err.message, "bad.safetensors: ", 17) != 0)
            fail_msg("case %zu (%s): got %s \"%s\", want %s containing \"%s\"", i, c->header,
                     sdxl_status_name(st), err.message, sdxl_status_name(c->code), c->message);
        assert_null(f.tensors);
        assert_int_equal(f.n_tensors, 0);
        free(exact);
    }
}

/* Unusual but valid files the official reader accepts. */
static void test_accepts_valid_edge_cases(void **state)
{
    static const struct {
        const char *header;
        size_t data_bytes;
        size_t n_tensors;
    } cases[] = {
        {"{}", 0, 0},
        {"{\"__metadata__\":{}}", 0, 0},
        {"  {\"__metadata__\":{\"a\":\"b\"}} \t\r\n", 0, 0},
        {"{" ENTRY("e", "F16", "[0, 7]", 0, 0) "}", 0, 1},
        /* Empty tensors anywhere, several at one offset. */
        {"{" ENTRY("b", "U8", "[2]", 0, 2) "," ENTRY("e1", "F32", "[0]", 2, 2) "," ENTRY(
             "e2", "I64", "[3, 0]", 2, 2) "," ENTRY("a", "BF16", "[1]", 2, 4) "}",
         4, 4},
        {"{" ENTRY("a", "F64", "[1, 1, 1, 1, 1, 1, 1, 1]", 0, 8) "}", 8, 1},
        {"{" ENTRY("\\u00e9\\n", "I32", "[1]", 0, 4) "}", 4, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t header_len = strlen(cases[i].header);
        size_t size = 8 + header_len + cases[i].data_bytes;
        uint8_t *image = file_image(cases[i].header, header_len, size);
        safetensors_file f;
        sdxl_error err;
        if (safetensors_parse(&f, image, size, "ok", &err) != SDXL_OK)
            fail_msg("case %zu: %s", i, err.message);
        assert_int_equal(f.n_tensors, cases[i].n_tensors);
        for (size_t t = 0; t < f.n_tensors; t++) {
            const uint8_t *p = f.tensors[t].data;
            assert_true(p >= image + 8 + header_len && p + f.tensors[t].nbytes <= image + size);
        }
        safetensors_close(&f);
        free(image);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_dtype_and_shape),
        cmocka_unit_test(test_streaming_writer_matches_one_shot),
        cmocka_unit_test(test_writer_refuses_wrong_byte_counts),
        cmocka_unit_test(test_writer_refuses_bad_tensors),
        cmocka_unit_test(test_metadata_round_trip_and_header_order),
        cmocka_unit_test(test_find_by_binary_search),
        cmocka_unit_test(test_reads_and_rewrites_python_file),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_malformed_files_are_refused),
        cmocka_unit_test(test_accepts_valid_edge_cases),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
