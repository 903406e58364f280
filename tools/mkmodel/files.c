/*
 * files.c — folders and byte-for-byte copies for mkmodel (see files.h).
 */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The folders of a diffusers SDXL directory, besides its root. */
static const char *const component_dirs[] = {
    "unet", "vae", "text_encoder", "text_encoder_2", "scheduler", "tokenizer", "tokenizer_2",
};
#define N_COMPONENT_DIRS (sizeof component_dirs / sizeof component_dirs[0])

/* Files a complete config folder has beyond the four model configs (which mkmodel loads, so a
 * missing one is reported there). */
static const char *const required_files[] = {
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer_2/tokenizer_config.json",
};

static sdxl_status join(char *out, size_t n, const char *a, const char *b, sdxl_error *err)
{
    int len = snprintf(out, n, "%s/%s", a, b);
    if (len < 0 || (size_t)len >= n)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "path too long: %s/%s", a, b);
    return SDXL_OK;
}

sdxl_status files_make_dir(const char *path, sdxl_error *err)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return error_set(err, SDXL_ERR_IO, "cannot create directory %s: %s", buf,
                             strerror(errno));
        if (end)
            break;
        *p = '/';
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return error_set(err, SDXL_ERR_IO, "%s exists and is not a directory", path);
    return SDXL_OK;
}

sdxl_status files_copy(const char *src, const char *dst, sdxl_error *err)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return error_set(err, errno == ENOENT ? SDXL_ERR_NOT_FOUND : SDXL_ERR_IO,
                         "cannot open %s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        int saved = errno;
        fclose(in);
        return error_set(err, SDXL_ERR_IO, "cannot create %s: %s", dst, strerror(saved));
    }
    char buf[65536];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    int saved = errno;
    fclose(in);
    ok = fclose(out) == 0 && ok;
    if (!ok)
        return error_set(err, SDXL_ERR_IO, "copying %s to %s: %s", src, dst, strerror(saved));
    return SDXL_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Copies the *.json regular files of src_dir into dst_dir (created). A missing src_dir is
 * fine: not every config folder has every component. */
static sdxl_status copy_json_files(const char *src_dir, const char *dst_dir, sdxl_error *err)
{
    DIR *d = opendir(src_dir);
    if (!d)
        return errno == ENOENT ? SDXL_OK
                               : error_set(err, SDXL_ERR_IO, "cannot read directory %s: %s",
                                           src_dir, strerror(errno));
    sdxl_status st = files_make_dir(dst_dir, err);
    struct dirent *e;
    while (!st && (e = readdir(d)) != NULL) {
        char src[1024], dst[1024];
        struct stat info;
        if (!ends_with(e->d_name, ".json"))
            continue;
        st = join(src, sizeof src, src_dir, e->d_name, err);
        if (!st)
            st = join(dst, sizeof dst, dst_dir, e->d_name, err);
        if (!st && stat(src, &info) == 0 && S_ISREG(info.st_mode))
            st = files_copy(src, dst, err);
    }
    closedir(d);
    return st;
}

sdxl_status files_copy_configs(const char *config_dir, const char *vocab_dir,
                               const char *out_dir, sdxl_error *err)
{
    char src[1024], dst[1024];
    sdxl_status st = SDXL_OK;
    for (size_t i = 0; !st && i < sizeof required_files / sizeof required_files[0]; i++) {
        struct stat info;
        st = join(src, sizeof src, config_dir, required_files[i], err);
        if (!st && stat(src, &info) != 0)
            st = error_set(err, SDXL_ERR_NOT_FOUND,
                           "%s is missing: --config must be a complete diffusers SDXL config "
                           "folder (see models/configs/README.md)",
                           src);
    }
    if (!st)
        st = copy_json_files(config_dir, out_dir, err);
    for (size_t i = 0; !st && i < N_COMPONENT_DIRS; i++) {
        st = join(src, sizeof src, config_dir, component_dirs[i], err);
        if (!st)
            st = join(dst, sizeof dst, out_dir, component_dirs[i], err);
        if (!st)
            st = copy_json_files(src, dst, err);
    }
    const char *tokenizers[] = {"tokenizer", "tokenizer_2"};
    const char *vocab_files[] = {"vocab.json", "merges.txt"};
    for (int t = 0; !st && t < 2; t++) {
        for (int f = 0; !st && f < 2; f++) {
            char dir[1024];
            st = join(src, sizeof src, vocab_dir, vocab_files[f], err);
            if (!st)
                st = join(dir, sizeof dir, out_dir, tokenizers[t], err);
            if (!st)
                st = join(dst, sizeof dst, dir, vocab_files[f], err);
            if (!st)
                st = files_copy(src, dst, err);
        }
    }
    return st;
}
