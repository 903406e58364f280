/*
 * http_request.c — HTTP/1.x request heads (see http_request.h).
 */
#include "server/http_request.h"

#include <stdbool.h>
#include <string.h>

/* RFC 9110 tchar. */
static bool is_token_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at pos (index of its '\n'), or len when there is none. */
static size_t line_end(const char *buf, size_t len, size_t pos)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    return nl ? (size_t)(nl - buf) : len;
}

/* The line [pos, nl) without a trailing '\r'. */
static size_t content_end(const char *buf, size_t pos, size_t nl)
{
    return nl > pos && buf[nl - 1] == '\r' ? nl - 1 : nl;
}

static http_parse_result parse_request_line(const char *buf, size_t end, http_request *out)
{
    size_t i = 0;
    while (i < end && is_token_char(buf[i]))
        i++;
    if (i == 0 || i >= end || buf[i] != ' ')
        return HTTP_PARSE_BAD;
    out->method = buf;
    out->method_len = i++;
    size_t target = i;
    while (i < end && buf[i] > ' ' && buf[i] != 0x7f)
        i++;
    if (i == target || i >= end || buf[i] != ' ')
        return HTTP_PARSE_BAD;
    out->target = buf + target;
    out->target_len = i - target;
    const char *q = memchr(out->target, '?', out->target_len);
    out->path_len = q ? (size_t)(q - out->target) : out->target_len;
    i++;
    static const char version[] = "HTTP/1.";
    if (end - i != sizeof version || memcmp(buf + i, version, sizeof version - 1) != 0)
        return HTTP_PARSE_BAD;
    char minor = buf[i + sizeof version - 1];
    if (minor < '0' || minor > '9')
        return HTTP_PARSE_BAD;
    out->minor_version = minor - '0';
    return HTTP_PARSE_OK;
}

static bool header_line_ok(const char *buf, size_t pos, size_t end)
{
    size_t i = pos;
    while (i < end && is_token_char(buf[i]))
        i++;
    if (i == pos || i >= end || buf[i] != ':')
        return false;
    for (i++; i < end; i++)
        if ((buf[i] < ' ' && buf[i] != '\t') || buf[i] == 0x7f)
            return false;
    return true;
}

http_parse_result http_parse_request(const char *buf, size_t len, http_request *out)
{
    memset(out, 0, sizeof *out);
    size_t nl = line_end(buf, len, 0);
    /* A malformed request line is reported as soon as it is complete. */
    if (nl == len) {
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                return HTTP_PARSE_BAD;
        return HTTP_PARSE_INCOMPLETE;
    }
    if (parse_request_line(buf, content_end(buf, 0, nl), out) != HTTP_PARSE_OK)
        return HTTP_PARSE_BAD;
    size_t pos = nl + 1;
    for (;;) {
        nl = line_end(buf, len, pos);
        if (nl == len)
            return HTTP_PARSE_INCOMPLETE;
        size_t end = content_end(buf, pos, nl);
        if (end == pos) {
            out->head_len = nl + 1;
            return HTTP_PARSE_OK;
        }
        if (!header_line_ok(buf, pos, end))
            return HTTP_PARSE_BAD;
        pos = nl + 1;
    }
}
