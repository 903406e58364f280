/*
 * cuda_dnn_plan.c — descriptors, operation graphs, engine choice and execution of cuDNN
 * graph-API plans, shared by the convolutions and cuDNN's attention (see cuda_dnn_plan.h).
 */
#include "backend/cuda/cuda_dnn_plan.h"

#include <stdio.h>
#include <time.h>

#define MAX_ENGINE_CONFIGS 32

cudnnDataType_t dnn_type(dtype t)
{
    switch (t) {
    case DTYPE_F16:
        return CUDNN_DATA_HALF;
    case DTYPE_BF16:
        return CUDNN_DATA_BFLOAT16;
    default:
        return CUDNN_DATA_FLOAT;
    }
}

sdxl_status dnn_descriptor(dnn_plan *p, cudnnBackendDescriptorType_t type,
                           cudnnBackendDescriptor_t *out, sdxl_error *err)
{
    if (p->n_desc == DNN_MAX_DESCRIPTORS)
        return error_set(err, SDXL_ERR_INTERNAL, "cuda backend: too many cuDNN descriptors");
    DNN(cudnnBackendCreateDescriptor(type, out), "creating a descriptor");
    p->desc[p->n_desc++] = *out;
    return SDXL_OK;
}

sdxl_status dnn_tensor(dnn_plan *p, const dnn_tensor_spec *t, cudnnBackendDescriptor_t *out,
                       sdxl_error *err)
{
    bool is_virtual = t->is_virtual, by_value = t->by_value;
    const struct {
        cudnnBackendAttributeName_t name;
        cudnnBackendAttributeType_t type;
        int64_t count;
        const void *value;
        const char *step;
    } attrs[] = {
        {CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t->type, "data type"},
        {CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, t->dims, "dimensions"},
        {CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, t->strides, "strides"},
        {CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &t->uid, "unique id"},
        {CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &t->alignment, "alignment"},
        {CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "virtual flag"},
        /* Set only for a scalar: the others keep cuDNN's default. */
        {CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "by-value flag"},
    };
    size_t n_attrs = sizeof(attrs) / sizeof(attrs[0]) - (by_value ? 0 : 1);
    cudnnBackendDescriptor_t d;
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, &d, err));
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    const char *step = "descriptor";
    for (size_t i = 0; i < n_attrs && s == CUDNN_STATUS_SUCCESS; i++) {
        step = attrs[i].step;
        s = cudnnBackendSetAttribute(d, attrs[i].name, attrs[i].type, attrs[i].count,
                                     attrs[i].value);
    }
    if (s == CUDNN_STATUS_SUCCESS) {
        step = "descriptor";
        s = cudnnBackendFinalize(d);
    }
    if (s != CUDNN_STATUS_SUCCESS) {
        char what[64];
        snprintf(what, sizeof(what), "%s tensor %s", t->name, step);
        return cuda_check_dnn(s, what, err);
    }
    *out = d;
    return SDXL_OK;
}

sdxl_status dnn_graph(cuda_backend *cb, dnn_plan *p, cudnnBackendDescriptor_t *ops, int64_t n_ops,
                      const char *what, cudnnBackendDescriptor_t *graph, sdxl_error *err)
{
    SDXL_TRY(dnn_descriptor(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph, err));
    DNN(cudnnBackendSetAttribute(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, n_ops, ops),
        "operation graph operations");
    DNN(cudnnBackendSetAttribute(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                 &cb->dnn),
        "operation graph handle");
    DNN(cudnnBackendFinalize(*graph), what);
    return SDXL_OK;
}

/* Whether an engine configuration computes what we need the way we need it (see the header). */
static bool engine_acceptable(cudnnBackendDescriptor_t cfg, bool exact_f32)
{
    cudnnBackendDescriptor_t engine;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) !=
        CUDNN_STATUS_SUCCESS)
        return false;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t n = 0;
    bool ok =
        cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                 &n, &engine) == CUDNN_STATUS_SUCCESS &&
        cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE,
                                 CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n,
                                 notes) == CUDNN_STATUS_SUCCESS;
    for (int64_t i = 0; ok && i < n; i++) {
        switch (notes[i]) {
        case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC:
        case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION:
        case CUDNN_NUMERICAL_NOTE_FFT:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_4x4:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_6x6:
        case CUDNN_NUMERICAL_NOTE_WINOGRAD_TILE_13x13:
            ok = false;
            break;
        case CUDNN_NUMERICAL_NOTE_TENSOR_CORE:
        case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS:
            ok = !exact_f32;
            break;
        default:
            break;
        }
    }
    cudnnBackendDestroyDescriptor(engine);
    return ok;
}

/* Tries the configurations one heuristics mode proposes; sets p->plan on success. The last
 * cuDNN failure is left in err (for the message when no mode works). Returns how many
 * configurations the filter refused. */
static int try_heuristics(cuda_backend *cb, dnn_plan *p, cudnnBackendDescriptor_t graph,
                          cudnnBackendHeurMode_t mode, bool exact_f32, sdxl_error *err)
{
    cudnnBackendDescriptor_t heur = NULL, cfgs[MAX_ENGINE_CONFIGS];
    int64_t count = 0, got = 0, created = 0;
    int refused = 0;
    if (cuda_check_dnn(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur),
                       "engine heuristics", err))
        return 0;
    if (cuda_check_dnn(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph),
                       "engine heuristics", err) ||
        cuda_check_dnn(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE,
                                                CUDNN_TYPE_HEUR_MODE, 1, &mode),
                       "engine heuristics", err) ||
        cuda_check_dnn(cudnnBackendFinalize(heur), "engine heuristics", err) ||
        cuda_check_dnn(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, NULL),
                       "engine heuristics", err))
        goto done;
    count = count < MAX_ENGINE_CONFIGS ? count : MAX_ENGINE_CONFIGS;
    for (; created < count; created++)
        if (cuda_check_dnn(
                cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfgs[created]),
                "engine configuration", err))
            goto done;
    if (cuda_check_dnn(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, cfgs),
                       "engine heuristics", err))
        goto done;
    for (int64_t i = 0; i < got && i < count && !p->plan; i++) {
        if (!engine_acceptable(cfgs[i], exact_f32)) {
            refused++;
            continue;
        }
        cudnnBackendDescriptor_t plan;
        if (cuda_check_dnn(
                cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan),
                "execution plan", err))
            goto done;
        int64_t n = 0, workspace = 0;
        if (cuda_check_dnn(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                                    CUDNN_TYPE_HANDLE, 1, &cb->dnn),
                           "execution plan", err) ||
            cuda_check_dnn(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs[i]),
                           "execution plan", err) ||
            cuda_check_dnn(cudnnBackendFinalize(plan), "execution plan", err) ||
            cuda_check_dnn(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                    CUDNN_TYPE_INT64, 1, &n, &workspace),
                           "execution plan workspace", err) ||
            p->n_desc == DNN_MAX_DESCRIPTORS) {
            cudnnBackendDestroyDescriptor(plan);
            continue;
        }
        /* The configuration stays alive with the plan made from it. */
        p->desc[p->n_desc++] = cfgs[i];
        cfgs[i] = NULL;
        p->plan = plan;
        p->workspace = workspace;
    }
done:
    for (int64_t i = 0; i < created; i++)
        if (cfgs[i])
            cudnnBackendDestroyDescriptor(cfgs[i]);
    cudnnBackendDestroyDescriptor(heur);
    return refused;
}

int dnn_plan_search(cuda_backend *cb, dnn_plan *p, cudnnBackendDescriptor_t graph, bool exact_f32,
                    sdxl_error *err)
{
    int refused = try_heuristics(cb, p, graph, CUDNN_HEUR_MODE_A, exact_f32, err);
    if (!p->plan)
        refused += try_heuristics(cb, p, graph, CUDNN_HEUR_MODE_FALLBACK, exact_f32, err);
    return refused;
}

double dnn_clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

void dnn_plan_clear(dnn_plan *p)
{
    if (p->plan)
        cudnnBackendDestroyDescriptor(p->plan);
    for (int i = p->n_desc - 1; i >= 0; i--)
        cudnnBackendDestroyDescriptor(p->desc[i]);
    p->plan = NULL;
    p->n_desc = 0;
}

sdxl_status dnn_plan_execute(cuda_backend *cb, const dnn_plan *p, int64_t n, const int64_t *uids,
                             void **ptrs, const char *what, sdxl_error *err)
{
    void *workspace = cb->conv_workspace.data;
    cudnnBackendDescriptor_t pack;
    DNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack), "variant pack");
    sdxl_status st =
        cuda_check_dnn(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                                CUDNN_TYPE_VOID_PTR, n, ptrs),
                       "variant pack", err);
    if (!st)
        st = cuda_check_dnn(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                                     CUDNN_TYPE_INT64, n, uids),
                            "variant pack", err);
    if (!st)
        st = cuda_check_dnn(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                                     CUDNN_TYPE_VOID_PTR, 1, &workspace),
                            "variant pack", err);
    if (!st)
        st = cuda_check_dnn(cudnnBackendFinalize(pack), "variant pack", err);
    if (!st)
        st = cuda_check_dnn(cudnnBackendExecute(cb->dnn, p->plan, pack), what, err);
    cudnnBackendDestroyDescriptor(pack);
    return st;
}
