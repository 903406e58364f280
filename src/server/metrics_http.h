/*
 * metrics_http.h — a tiny HTTP/1.1 server on its own thread that answers GET /metrics with
 * the Prometheus text (and GET / with a pointer to it), on a loopback address by default.
 *
 * Hostile-input safe: one connection at a time, a request head of at most 8 KiB read within
 * 5 seconds, then one answer and close; anything else gets 400, 404, 405 or 431.
 */
#ifndef SDXL_SERVER_METRICS_HTTP_H
#define SDXL_SERVER_METRICS_HTTP_H

#include <stddef.h>

#include "base/status.h"

typedef struct metrics_http metrics_http;

/* Produces the body of /metrics (malloc'd; NULL on failure → 500). */
typedef char *(*metrics_http_render_fn)(void *user, size_t *len);

/* Binds HOST:PORT (numeric or "localhost"; port 0 picks one) and starts serving. */
sdxl_status metrics_http_start(const char *address, metrics_http_render_fn render, void *user,
                               metrics_http **out, sdxl_error *err);
/* The bound port. */
int metrics_http_port(const metrics_http *server);
/* Stops the thread and closes the socket. */
void metrics_http_stop(metrics_http *server);

#endif /* SDXL_SERVER_METRICS_HTTP_H */
