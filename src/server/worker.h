/*
 * worker.h — the thread that owns the engine: it loads the model (health NOT_SERVING until
 * then), opens the one session, and runs queued jobs one at a time, in arrival order, checking
 * between denoising steps whether the client is still there.
 */
#ifndef SDXL_SERVER_WORKER_H
#define SDXL_SERVER_WORKER_H

#include <stdbool.h>

#include "base/status.h"

struct server;

sdxl_status worker_start(struct server *s, sdxl_error *err);
/* After queue_close: waits for the worker to finish its last job and close the engine. */
void worker_join(struct server *s);

/* Estimated ms until a job submitted now would start: what is left of the running job plus
 * the estimates of every queued job. False when nothing has been measured yet. */
bool worker_estimate_wait_ms(struct server *s, double *ms);

#endif /* SDXL_SERVER_WORKER_H */
