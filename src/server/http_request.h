/*
 * http_request.h — parsing the head of an HTTP/1.x request (request line and header lines) for
 * the metrics endpoint. Never allocates, never reads outside [buf, buf + len), and tells "need
 * more bytes" apart from "malformed", in the manner of picohttpparser.
 */
#ifndef SDXL_SERVER_HTTP_REQUEST_H
#define SDXL_SERVER_HTTP_REQUEST_H

#include <stddef.h>

typedef enum http_parse_result {
    HTTP_PARSE_OK = 0,
    HTTP_PARSE_INCOMPLETE = 1, /* no complete head yet: read more (up to the caller's limit) */
    HTTP_PARSE_BAD = 2,        /* malformed: answer 400 and close */
} http_parse_result;

typedef struct http_request {
    const char *method; /* points into buf, not NUL-terminated */
    size_t method_len;
    const char *target; /* the request target ("/metrics?x=1") */
    size_t target_len;
    size_t path_len;    /* the target up to '?' */
    int minor_version;  /* HTTP/1.<minor> */
    size_t head_len;    /* bytes of the head, including the blank line */
} http_request;

/* Parses "METHOD SP TARGET SP HTTP/1.x CRLF *(header CRLF) CRLF" (bare LF accepted too). */
http_parse_result http_parse_request(const char *buf, size_t len, http_request *out);

#endif /* SDXL_SERVER_HTTP_REQUEST_H */
