/*
 * method.c — the table of served methods.
 */
#include "server/method.h"

#include <stddef.h>

static const struct {
    const char *path;
    const char *name;
} methods[METHOD_COUNT] = {
    [METHOD_IMG2IMG] = {"/sdxl.v1.ImageGeneration/Img2Img", "Img2Img"},
    [METHOD_IMG2IMG_BATCH] = {"/sdxl.v1.ImageGeneration/Img2ImgBatch", "Img2ImgBatch"},
    [METHOD_IMG2IMG_STREAM] = {"/sdxl.v1.ImageGeneration/Img2ImgStream", "Img2ImgStream"},
    [METHOD_TXT2IMG] = {"/sdxl.v1.ImageGeneration/Txt2Img", "Txt2Img"},
    [METHOD_GET_STATUS] = {"/sdxl.v1.ImageGeneration/GetStatus", "GetStatus"},
    [METHOD_HEALTH_CHECK] = {"/grpc.health.v1.Health/Check", "Health.Check"},
    [METHOD_HEALTH_WATCH] = {"/grpc.health.v1.Health/Watch", "Health.Watch"},
    [METHOD_REFLECTION_V1] = {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                              "Reflection.v1"},
    [METHOD_REFLECTION_V1ALPHA] = {"/grpc.reflection.v1alpha.ServerReflection/"
                                   "ServerReflectionInfo",
                                   "Reflection.v1alpha"},
    [METHOD_UNKNOWN] = {NULL, "unknown"},
};

const char *method_path(server_method method)
{
    return method < METHOD_COUNT ? methods[method].path : NULL;
}

const char *method_name(server_method method)
{
    return method < METHOD_COUNT ? methods[method].name : "unknown";
}

bool method_is_generation(server_method method)
{
    return method == METHOD_IMG2IMG || method == METHOD_IMG2IMG_BATCH ||
           method == METHOD_IMG2IMG_STREAM || method == METHOD_TXT2IMG;
}

bool method_has_unary_request(server_method method)
{
    return method != METHOD_REFLECTION_V1 && method != METHOD_REFLECTION_V1ALPHA &&
           method != METHOD_UNKNOWN;
}
