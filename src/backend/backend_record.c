/*
 * backend_record.c — recording op sequences as graphs and launching them (see backend.h):
 * the checks common to every backend, around the op table's recording entries.
 */
#include "backend/backend.h"

static sdxl_status cannot_record(const backend *b, sdxl_error *err)
{
    return error_set(err, SDXL_ERR_UNSUPPORTED,
                     "the %s backend cannot record op sequences as graphs; run the ops directly",
                     b->ops->name);
}

bool backend_can_record(const backend *b)
{
    return b->ops->record_begin != NULL;
}

sdxl_status backend_record_begin(backend *b, sdxl_error *err)
{
    if (!backend_can_record(b))
        return cannot_record(b, err);
    if (b->recording)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "record begin: the %s backend is already recording; end that recording "
                         "first",
                         b->ops->name);
    SDXL_TRY(b->ops->record_begin(b, err));
    b->recording = true;
    return SDXL_OK;
}

sdxl_status backend_record_end(backend *b, backend_graph **out, sdxl_error *err)
{
    if (out)
        *out = NULL;
    if (!b->recording)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "record end: the %s backend is not recording; call backend_record_begin "
                         "first",
                         b->ops->name);
    b->recording = false;
    return b->ops->record_end(b, out, err);
}

bool backend_graph_current(const backend *b, const backend_graph *g)
{
    return g && backend_can_record(b) && b->ops->graph_current(b, g);
}

sdxl_status backend_graph_launch(backend *b, backend_graph *g, sdxl_error *err)
{
    if (!backend_can_record(b))
        return cannot_record(b, err);
    if (b->recording)
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "graph launch: the %s backend is recording; a graph cannot launch "
                         "inside another",
                         b->ops->name);
    if (!b->ops->graph_current(b, g))
        return error_set(err, SDXL_ERR_INVALID_ARGUMENT,
                         "graph launch: the graph is stale (scratch memory it uses was replaced "
                         "by a larger shape since); record it again");
    return b->ops->graph_launch(b, g, err);
}

void backend_graph_free(backend *b, backend_graph *g)
{
    if (g && backend_can_record(b))
        b->ops->graph_free(b, g);
}
