/*
 * api/errors.c - the one table mapping OCI error codes to their wire name, message and
 * HTTP status, and the function that sends an OCI error body.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"

static const struct {
    const char *name;
    const char *message;
    int status;
} codes[ZN_OCI_CODE_MAX] = {
    [ZN_OCI_BLOB_UNKNOWN] = {"BLOB_UNKNOWN", "blob unknown to registry", 404},
    [ZN_OCI_BLOB_UPLOAD_INVALID] = {"BLOB_UPLOAD_INVALID", "blob upload invalid", 400},
    [ZN_OCI_BLOB_UPLOAD_UNKNOWN] = {"BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404},
    [ZN_OCI_DIGEST_INVALID] = {"DIGEST_INVALID", "provided digest did not match uploaded content", 400},
    [ZN_OCI_MANIFEST_BLOB_UNKNOWN] = {"MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry",
                                      400},
    [ZN_OCI_MANIFEST_INVALID] = {"MANIFEST_INVALID", "manifest invalid", 400},
    [ZN_OCI_MANIFEST_UNKNOWN] = {"MANIFEST_UNKNOWN", "manifest unknown to registry", 404},
    [ZN_OCI_NAME_INVALID] = {"NAME_INVALID", "invalid repository name", 400},
    [ZN_OCI_NAME_UNKNOWN] = {"NAME_UNKNOWN", "repository name not known to registry", 404},
    [ZN_OCI_SIZE_INVALID] = {"SIZE_INVALID", "provided length did not match content length", 400},
    [ZN_OCI_UNAUTHORIZED] = {"UNAUTHORIZED", "authentication required", 401},
    [ZN_OCI_DENIED] = {"DENIED", "requested access to the resource is denied", 403},
    [ZN_OCI_UNSUPPORTED] = {"UNSUPPORTED", "the operation is unsupported", 400},
    [ZN_OCI_TOO_MANY_REQUESTS] = {"TOOMANYREQUESTS", "too many requests", 429},
    [ZN_OCI_RANGE_INVALID] = {"BLOB_UPLOAD_INVALID", "requested range not satisfiable", 416},
    [ZN_OCI_NOT_FOUND] = {"NOT_FOUND", "resource not found", 404},
    [ZN_OCI_METHOD_UNKNOWN] = {"UNSUPPORTED", "method not allowed for this resource", 405},
    [ZN_OCI_INTERNAL] = {"UNKNOWN", "internal server error", 500},
    [ZN_OCI_TAG_INVALID] = {"TAG_INVALID", "manifest tag did not match URI", 400},
    [ZN_OCI_PAGINATION_NUMBER_INVALID] = {"PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400},
};

int zn_api_error_status(zn_oci_code_t code)
{
    return code < ZN_OCI_CODE_MAX ? codes[code].status : 500;
}

void zn_api_add_version_header(h2o_req_t *req)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("docker-distribution-api-version"), 0, NULL,
                          H2O_STRLIT("registry/2.0"));
}

int zn_api_send_error_status(h2o_req_t *req, int status, zn_oci_code_t code, const char *detail)
{
    if (code >= ZN_OCI_CODE_MAX)
        code = ZN_OCI_INTERNAL;
    json_t *err = json_pack("{s:s,s:s}", "code", codes[code].name, "message", codes[code].message);
    json_object_set_new(err, "detail", detail != NULL ? json_string(detail) : json_object());
    if (json_object_get(err, "detail") == NULL) /* detail was not valid UTF-8 */
        json_object_set_new(err, "detail", json_object());
    json_t *body = json_pack("{s:[o]}", "errors", err);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t len = strlen(text);
    h2o_iovec_t out = h2o_strdup(&req->pool, text, len);
    free(text);

    req->res.status = status != 0 ? status : codes[code].status;
    req->res.reason = "";
    req->res.content_length = out.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, out.base, out.len);
    return 0;
}
