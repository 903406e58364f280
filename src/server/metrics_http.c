/*
 * metrics_http.c — the /metrics HTTP endpoint (see metrics_http.h).
 */
#include "server/metrics_http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/http_request.h"

enum { HEAD_MAX = 8192, READ_TIMEOUT_MS = 5000, WRITE_TIMEOUT_MS = 5000 };

struct metrics_http {
    int listen_fd;
    int stop_pipe[2];
    int port;
    metrics_http_render_fn render;
    void *user;
    pthread_t thread;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of data, giving up after WRITE_TIMEOUT_MS (a client that does not read). */
static void write_all(int fd, const char *data, size_t len)
{
    int64_t deadline = now_ms() + WRITE_TIMEOUT_MS;
    while (len > 0) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int code, const char *reason, const char *content_type,
                    const char *body, size_t body_len, bool head_only)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, content_type, body_len);
    write_all(fd, head, (size_t)n);
    if (!head_only)
        write_all(fd, body, body_len);
}

static void respond_text(int fd, int code, const char *reason, const char *body)
{
    respond(fd, code, reason, "text/plain; charset=utf-8", body, strlen(body), false);
}

/* After answering: stop sending, then read and drop what the client still sends (briefly,
 * bounded), so that closing with unread input does not reset the connection before the client
 * has read the answer. */
static void linger_close(int fd)
{
    shutdown(fd, SHUT_WR);
    char sink[4096];
    int64_t deadline = now_ms() + 1000;
    size_t drained = 0;
    while (drained < (64u << 10)) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        drained += (size_t)n;
    }
    close(fd);
}

/* Reads a request head (bounded in size and time) and answers it. */
static void serve_connection(metrics_http *s, int fd)
{
    char buf[HEAD_MAX];
    size_t len = 0;
    int64_t deadline = now_ms() + READ_TIMEOUT_MS;
    http_request req;
    http_parse_result r = HTTP_PARSE_INCOMPLETE;
    while (r == HTTP_PARSE_INCOMPLETE) {
        if (len == sizeof buf) {
            respond_text(fd, 431, "Request Header Fields Too Large", "request head too large\n");
            return;
        }
        int64_t left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        r = http_parse_request(buf, len, &req);
    }
    if (r == HTTP_PARSE_BAD) {
        respond_text(fd, 400, "Bad Request", "malformed HTTP request\n");
        return;
    }
    bool is_get = req.method_len == 3 && memcmp(req.method, "GET", 3) == 0;
    bool is_head = req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
    if (!is_get && !is_head) {
        respond_text(fd, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    if (req.path_len == 8 && memcmp(req.target, "/metrics", 8) == 0) {
        size_t body_len = 0;
        char *body = s->render(s->user, &body_len);
        if (!body) {
            respond_text(fd, 500, "Internal Server Error", "out of memory\n");
            return;
        }
        respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, body_len,
                is_head);
        free(body);
    } else if (req.path_len == 1 && req.target[0] == '/') {
        respond_text(fd, 200, "OK", "sdxld metrics: GET /metrics\n");
    } else {
        respond_text(fd, 404, "Not Found", "not found: try /metrics\n");
    }
}

static void *http_main(void *arg)
{
    metrics_http *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            LOG_ERROR("metrics: poll failed: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_connection(s, fd);
        linger_close(fd);
    }
}

static sdxl_status bind_address(const char *address, int *fd_out, int *port_out,
                                sdxl_error *err)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--metrics-listen %s: expected "
                         "HOST:PORT", address);
    size_t host_len = (size_t)(colon - address);
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT, "--metrics-listen %s: %s", address,
                         gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return error_set(err, SDXL_ERR_IO, "--metrics-listen %s: %s (is the port in use? pick "
                         "another or \"none\")", address, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    getsockname(fd, (struct sockaddr *)&bound, &bound_len);
    *port_out = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *fd_out = fd;
    return SDXL_OK;
}

sdxl_status metrics_http_start(const char *address, metrics_http_render_fn render, void *user,
                               metrics_http **out, sdxl_error *err)
{
    *out = NULL;
    metrics_http *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "metrics: out of memory");
    s->render = render;
    s->user = user;
    sdxl_status st = bind_address(address, &s->listen_fd, &s->port, err);
    if (st) {
        free(s);
        return st;
    }
    if (pipe2(s->stop_pipe, O_CLOEXEC)) {
        close(s->listen_fd);
        free(s);
        return error_set(err, SDXL_ERR_IO, "metrics: pipe: %s", strerror(errno));
    }
    if (pthread_create(&s->thread, NULL, http_main, s)) {
        close(s->listen_fd);
        close(s->stop_pipe[0]);
        close(s->stop_pipe[1]);
        free(s);
        return error_set(err, SDXL_ERR_INTERNAL, "metrics: could not start its thread");
    }
    *out = s;
    return SDXL_OK;
}

int metrics_http_port(const metrics_http *s)
{
    return s->port;
}

void metrics_http_stop(metrics_http *s)
{
    if (!s)
        return;
    ssize_t n = write(s->stop_pipe[1], "x", 1);
    (void)n;
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}
