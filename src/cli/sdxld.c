/*
 * sdxld.c — the server's main: flags, logging, then server_run until SIGTERM.
 *
 *     build/sdxld --model models/sdxl-turbo [--listen 127.0.0.1:50051] [--socket PATH] ...
 *     build/sdxld --help
 */
#include <stdio.h>

#include "base/log.h"
#include "server/options.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    server_options opts;
    options_default(&opts);
    sdxl_error err;
    if (options_parse(argc, argv, &opts, &err) != SDXL_OK) {
        fprintf(stderr, "sdxld: %s\n", err.message);
        return 2;
    }
    if (opts.help) {
        options_usage(stdout);
        return 0;
    }
    log_configure(opts.log_level, opts.log_format, NULL);
    return server_run(&opts);
}
