/*
 * handlers.h — what the poller calls when a call arrives or ends, per method, and what the
 * worker calls around a job. Each handler answers through call_send / call_finish and never
 * blocks the poller.
 */
#ifndef SDXL_SERVER_HANDLERS_H
#define SDXL_SERVER_HANDLERS_H

#include "sdxl/v1/image_generation.pb-c.h"
#include "server/call.h"
#include "server/job.h"

struct server;

/* Generation methods (handlers_generate.c): decode and validate on the pool, then queue. */
void handlers_generate_start(call *c);
/* The client left or a deadline passed: take the job out of the queue if it is still there. */
void handlers_generate_cancelled(call *c);
/* The engine's parameters for j (pointing into j; input receives the borrowed input image). */
void handlers_generate_params(const job *j, sdxl_generate_params *gp, sdxl_image *input);
/* Worker: the engine made image `index` (pixels borrowed): copy it and encode it on the pool. */
void handlers_generate_image(job *j, int index, const sdxl_image *img, uint64_t seed);
/* Worker (or shutdown): the engine is done with j (failed when error is not NULL). */
void handlers_generate_done(job *j, const server_error *error);
/* Stream calls only: queue position and progress events. */
void handlers_generate_queued(job *j, int position, double wait_ms);
void handlers_generate_progress(job *j, sdxl_stage stage, int step, int total_steps);

/* GetStatus (handlers_status.c), answered on the poller. */
void handlers_status(call *c);
/* The wire's Stage for an engine stage (in GetStatus's running job and in progress events). */
Sdxl__V1__Stage handlers_wire_stage(sdxl_stage stage);

/* Health (health.c). */
void health_check(call *c);
void health_watch(call *c);
void health_watch_cancelled(call *c);
/* Sends the current state to every watcher (after a state change); with final, ends their
 * calls (shutdown). */
void health_notify(struct server *s, bool final);

/* Reflection (reflection.c), v1 and v1alpha (the same messages on the wire). The index of
 * the embedded descriptor set is built once at start-up. */
sdxl_status reflection_init(sdxl_error *err);
void reflection_free(void);
void reflection_start(call *c);
void reflection_on_recv(call *c, bool success);

#endif /* SDXL_SERVER_HANDLERS_H */
