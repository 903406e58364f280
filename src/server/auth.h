/*
 * auth.h — the opt-in shared token (--auth-token-file): loading it, reading a client's
 * "authorization: Bearer <token>" header, and comparing in constant time.
 */
#ifndef SDXL_SERVER_AUTH_H
#define SDXL_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define AUTH_TOKEN_MAX 4096

typedef struct auth_token {
    char value[AUTH_TOKEN_MAX + 1];
    size_t len;
} auth_token;

/* Reads the token: the file's first line, without surrounding spaces, tabs or CR/LF. Fails
 * for a missing or unreadable file, an empty token, one over AUTH_TOKEN_MAX bytes, or one
 * with characters outside visible ASCII (it travels in an HTTP/2 header). Warns (log) when
 * the file is readable by group or others. */
sdxl_status auth_token_load(const char *path, auth_token *out, sdxl_error *err);

/* Finds the token in an authorization header value of len bytes (no NUL needed): the scheme
 * "Bearer" (any case), one or more spaces, then the token up to trailing spaces. False for any
 * other shape. *token points into value. */
bool auth_parse_bearer(const char *value, size_t len, const char **token, size_t *token_len);

/* True when the header value carries exactly this token. Time does not depend on where the
 * tokens differ. */
bool auth_check(const auth_token *expected, const char *value, size_t len);

#endif /* SDXL_SERVER_AUTH_H */
