/*
 * cuda_record.c — recording the ops queued on the backend's stream as a CUDA graph (stream
 * capture) and replaying it (see backend.h, "recorded op sequences").
 *
 * The capture is thread-local: a call on this thread that the graph cannot hold (a wait, an
 * allocation) fails and spoils the capture instead of running, and other threads' work is not
 * affected. cuBLASLt and cuDNN take part like our kernels: their plans were chosen before the
 * recording (the ops ran once), and their workspaces are the backend's own buffers, whose
 * addresses the graph keeps; their replacement counts say when those moved.
 */
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"

struct backend_graph {
    cudaGraphExec_t exec;
    uint64_t generation; /* scratch_generation when recorded */
};

/* Changes whenever a buffer that ops use (and so graphs hold) moves. */
static uint64_t scratch_generation(const cuda_backend *cb)
{
    return cb->conv_workspace.replacements + cb->scratch.replacements;
}

sdxl_status cuda_record_begin(backend *b, sdxl_error *err)
{
    return cuda_check(cudaStreamBeginCapture(cuda_of(b)->stream, cudaStreamCaptureModeThreadLocal),
                      "starting a graph recording", err);
}

static sdxl_status instantiate(cuda_backend *cb, cudaGraph_t graph, backend_graph **out,
                               sdxl_error *err)
{
    backend_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return error_set(err, SDXL_ERR_OUT_OF_MEMORY, "cuda backend: out of host memory");
    sdxl_status st = cuda_check(cudaGraphInstantiate(&g->exec, graph, 0), "instantiating a graph",
                                err);
    /* Uploading now keeps that work out of the first launch. */
    if (!st)
        st = cuda_check(cudaGraphUpload(g->exec, cb->stream), "uploading a graph", err);
    if (st) {
        if (g->exec)
            cudaGraphExecDestroy(g->exec);
        free(g);
        return st;
    }
    g->generation = scratch_generation(cb);
    *out = g;
    return SDXL_OK;
}

sdxl_status cuda_record_end(backend *b, backend_graph **out, sdxl_error *err)
{
    cuda_backend *cb = cuda_of(b);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cb->stream, &graph);
    sdxl_status st = SDXL_OK;
    if (!out) {
        cudaGetLastError(); /* a spoilt capture's error is not sticky: clear it */
    } else {
        st = cuda_check(e, "ending a graph recording", err);
        if (!st)
            st = instantiate(cb, graph, out, err);
    }
    if (graph)
        cudaGraphDestroy(graph);
    return st;
}

bool cuda_graph_current(const backend *b, const backend_graph *g)
{
    return g->generation == scratch_generation((const cuda_backend *)b);
}

sdxl_status cuda_graph_launch(backend *b, backend_graph *g, sdxl_error *err)
{
    return cuda_check(cudaGraphLaunch(g->exec, cuda_of(b)->stream), "launching a graph", err);
}

void cuda_graph_free(backend *b, backend_graph *g)
{
    cudaGraphExecDestroy(g->exec);
    free(g);
}
