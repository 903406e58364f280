/*
 * job.h — one queued generation: the validated request, its place in the queue, the images as
 * the engine makes them and as the encoders finish them, and its timings.
 *
 * Lifetime: created by the decode task and attached to its call (call->handler), so it lives
 * exactly as long as the call; whoever holds the job "logically" (the decode task, then the
 * queue, then whoever took it out of the queue, then the last encoder) answers the call once and
 * drops the call reference the job stood for.
 */
#ifndef SDXL_SERVER_JOB_H
#define SDXL_SERVER_JOB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/image.h"
#include "sdxl.h"
#include "server/call.h"
#include "server/errors.h"
#include "server/eta.h"
#include "server/queue.h"
#include "server/request.h"

typedef struct job_output {
    image pixels;         /* the engine's image (freed once encoded) */
    uint64_t seed;
    image_buffer encoded;
    image_buffer thumbnail;
    bool made;
} job_output;

typedef struct job {
    queue_node node;
    call *call;
    gen_request req;
    eta_shape shape;

    uint64_t run_seq;      /* the order the engine started it (1, 2, …) */
    double decode_ms;
    double queued_s, started_s;
    sdxl_timings timings;
    double encode_ms;      /* summed over images */

    job_output *outputs;   /* req.batch_size entries */
    /* Work still to finish before the answer: one per image being encoded, plus one for the
     * engine's run. The one that brings it to 0 answers. */
    atomic_int pending;

    pthread_mutex_t lock;  /* failed, error, encode_ms */
    bool failed;
    server_error error;
} job;

#endif /* SDXL_SERVER_JOB_H */
