/*
 * auth.c — bearer tokens (see auth.h).
 */
#include "server/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/log.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

sdxl_status auth_token_load(const char *path, auth_token *out, sdxl_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, SDXL_ERR_IO, "--auth-token-file %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077))
        LOG_WARNING("--auth-token-file %s can be read by other users (mode %03o): chmod 600 it",
                    path, (unsigned)(sb.st_mode & 0777));
    char buf[AUTH_TOKEN_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *line_end = strpbrk(buf, "\r\n");
    if (line_end)
        *line_end = '\0';
    else if (n > AUTH_TOKEN_MAX)
        return error_set(err, SDXL_ERR_LIMIT, "--auth-token-file %s: the token is longer than "
                         "%d bytes", path, AUTH_TOKEN_MAX);
    char *start = buf;
    while (*start && is_blank(*start))
        start++;
    size_t len = strlen(start);
    while (len && is_blank(start[len - 1]))
        len--;
    if (len == 0)
        return error_set(err, SDXL_ERR_FORMAT, "--auth-token-file %s: the first line holds no "
                         "token; write one (e.g. from openssl rand -hex 32)", path);
    for (size_t i = 0; i < len; i++)
        if (start[i] <= ' ' || start[i] > '~')
            return error_set(err, SDXL_ERR_FORMAT, "--auth-token-file %s: byte %zu of the token "
                             "is not visible ASCII (it is sent in a header)", path, i);
    memcpy(out->value, start, len);
    out->value[len] = '\0';
    out->len = len;
    return SDXL_OK;
}

bool auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len)
{
    static const char scheme[] = "bearer";
    const size_t scheme_len = sizeof scheme - 1;
    if (len <= scheme_len || strncasecmp(value, scheme, scheme_len) != 0 ||
        value[scheme_len] != ' ')
        return false;
    size_t start = scheme_len;
    while (start < len && value[start] == ' ')
        start++;
    size_t end = len;
    while (end > start && value[end - 1] == ' ')
        end--;
    if (end == start)
        return false;
    for (size_t i = start; i < end; i++)
        if (value[i] <= ' ' || value[i] > '~')
            return false;
    *token = value + start;
    *token_len = end - start;
    return true;
}

bool auth_check(const auth_token *expected, const char *value, size_t len)
{
    const char *token;
    size_t token_len;
    if (!auth_parse_bearer(value, len, &token, &token_len))
        return false;
    /* Compare every byte of the expected token whatever the given one holds. */
    unsigned diff = token_len != expected->len;
    for (size_t i = 0; i < expected->len; i++)
        diff |= (unsigned char)expected->value[i] ^ (unsigned char)(i < token_len ? token[i] : 0);
    return diff == 0;
}
