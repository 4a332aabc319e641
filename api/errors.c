/*
 * api/errors.c - every error zinc answers on the API, in two tables: OCI codes to their
 * wire code, message, HTTP status and default detail (zot's bytes for the 401/403 of
 * authentication and authorization, 413 for bodies over a maximum), and each internal
 * zn_err_t to the OCI code it means. Handlers, the server's 404/405/429 and its refusals
 * all send through here; nothing else writes error JSON.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"

#define AUTHN_DESCRIPTION                                                                                                          \
    "{\"description\":\"The access controller was unable to authenticate the client. Often this will be accompanied by a "    \
    "WWW-Authenticate HTTP response header indicating how to authenticate.\"}"

static const zn_oci_error_t codes[ZN_OCI_CODE_MAX] = {
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
    [ZN_OCI_UNAUTHORIZED] = {"UNAUTHORIZED", "authentication required", 401, AUTHN_DESCRIPTION},
    [ZN_OCI_DENIED] = {"DENIED", "requested access to the resource is denied", 403,
                       "{\"description\":\"The access controller denied access for the operation on a resource.\"}"},
    [ZN_OCI_UNSUPPORTED] = {"UNSUPPORTED", "the operation is unsupported", 400},
    [ZN_OCI_TOO_MANY_REQUESTS] = {"TOOMANYREQUESTS", "too many requests", 429},
    [ZN_OCI_RANGE_INVALID] = {"BLOB_UPLOAD_INVALID", "requested range not satisfiable", 416},
    [ZN_OCI_NOT_FOUND] = {"NOT_FOUND", "resource not found", 404},
    [ZN_OCI_METHOD_UNKNOWN] = {"UNSUPPORTED", "method not allowed for this resource", 405},
    [ZN_OCI_INTERNAL] = {"UNKNOWN", "internal server error", 500},
    [ZN_OCI_TAG_INVALID] = {"TAG_INVALID", "manifest tag did not match URI", 400},
    [ZN_OCI_PAGINATION_NUMBER_INVALID] = {"PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400},
    [ZN_OCI_AUTHN_REQUIRED] = {"UNAUTHORIZED", "authentication required", 401, AUTHN_DESCRIPTION, true},
    [ZN_OCI_SIZE_TOO_LARGE] = {"SIZE_INVALID", "provided length did not match content length", 413},
    [ZN_OCI_BACKEND_BUSY] = {"TOOMANYREQUESTS", "storage backend busy, retry later", 503, NULL, false, 1},
    [ZN_OCI_UNAVAILABLE] = {"UNAVAILABLE", "cluster member unavailable", 502},
};

/* What each internal error means. `as` picks the resource's code from zn_api_codes_t. */
enum { AS_TABLE, AS_ENOENT, AS_EINVAL };
static const struct {
    bool set;
    uint8_t as;
    zn_oci_code_t code; /* for AS_TABLE */
    const char *detail; /* default detail, NULL = the code's */
} errs[] = {
    [ZN_OK] = {true, AS_TABLE, ZN_OCI_INTERNAL}, /* a caller's bug: no error to send */
    [ZN_ENOENT] = {true, AS_ENOENT},
    /* storage: the name would collide with another repository's layout */
    [ZN_EEXIST] = {true, AS_TABLE, ZN_OCI_NAME_INVALID, "name collides with the layout of another repository"},
    [ZN_EINVAL] = {true, AS_EINVAL},
    [ZN_EDIGEST] = {true, AS_TABLE, ZN_OCI_DIGEST_INVALID},
    [ZN_ERANGE] = {true, AS_TABLE, ZN_OCI_INTERNAL},
    [ZN_ETOOBIG] = {true, AS_TABLE, ZN_OCI_SIZE_TOO_LARGE},
    [ZN_EIO] = {true, AS_TABLE, ZN_OCI_INTERNAL},
    [ZN_ENOMEM] = {true, AS_TABLE, ZN_OCI_INTERNAL},
    [ZN_EBUSY] = {true, AS_TABLE, ZN_OCI_INTERNAL},
    [ZN_EUNSUPP] = {true, AS_TABLE, ZN_OCI_UNSUPPORTED},
    [ZN_EDENIED] = {true, AS_TABLE, ZN_OCI_INTERNAL},
    /* S3 throttling (SlowDown, 503) or an unreachable endpoint outlasted the driver's retries */
    [ZN_EAGAIN] = {true, AS_TABLE, ZN_OCI_BACKEND_BUSY},
};
#define ERRS_N (sizeof(errs) / sizeof(errs[0]))

const zn_oci_error_t *zn_api_error(zn_oci_code_t code)
{
    return &codes[(unsigned)code < ZN_OCI_CODE_MAX ? code : ZN_OCI_INTERNAL];
}

int zn_api_error_status(zn_oci_code_t code)
{
    return zn_api_error(code)->status;
}

zn_oci_code_t zn_api_err_code(zn_err_t err, const zn_api_codes_t *as, bool *internal)
{
    zn_oci_code_t code = ZN_OCI_INTERNAL;
    if ((unsigned)err < ERRS_N && errs[err].set)
        code = errs[err].as == AS_ENOENT ? as->enoent : errs[err].as == AS_EINVAL ? as->einval : errs[err].code;
    *internal = code == ZN_OCI_INTERNAL;
    return code;
}

int zn_api_send_err(h2o_req_t *req, zn_err_t err, const zn_api_codes_t *as, const char *detail)
{
    bool internal;
    zn_oci_code_t code = zn_api_err_code(err, as, &internal);
    if (internal) {
        zn_log(ZN_LOG_ERROR, "storage failure", ZN_LSTRN("method", req->method.base, req->method.len),
               ZN_LSTRN("path", req->input.path.base, req->input.path.len), ZN_LSTR("error", zn_err_str(err)));
        return zn_api_send_error(req, code, NULL);
    }
    if (detail == NULL && (unsigned)err < ERRS_N)
        detail = errs[err].detail;
    return zn_api_send_error(req, code, detail);
}

void zn_api_add_version_header(h2o_req_t *req)
{
    zn_edge_header_add_name_ref(req, "docker-distribution-api-version", H2O_STRLIT("registry/2.0"));
}

/* The error object's detail: the caller's string, else the row's JSON, else {}. */
static json_t *detail_of(const zn_oci_error_t *e, const char *detail)
{
    json_t *d = detail != NULL ? json_string(detail) : e->detail_json != NULL ? json_loads(e->detail_json, 0, NULL) : NULL;
    return d != NULL ? d : json_object(); /* NULL: detail was not valid UTF-8 */
}

/* The body's text (malloc'd), or NULL if jansson ran out of memory. */
static char *error_text(const zn_oci_error_t *e, const char *detail)
{
    json_t *err = json_pack("{s:s,s:s,s:o}", "code", e->code, "message", e->message, "detail", detail_of(e, detail));
    json_t *body = err != NULL && !e->bare ? json_pack("{s:[o]}", "errors", err) : err;
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

h2o_iovec_t zn_api_error_body(h2o_req_t *req, zn_oci_code_t code, const char *detail)
{
    char *text = error_text(zn_api_error(code), detail);
    h2o_iovec_t out = text != NULL ? h2o_strdup(&req->pool, text, strlen(text)) : h2o_iovec_init(NULL, 0);
    free(text);
    return out;
}

int zn_api_send_error_status(h2o_req_t *req, int status, zn_oci_code_t code, const char *detail)
{
    const zn_oci_error_t *e = zn_api_error(code);
    char *text = error_text(e, detail);

    if (e->retry_after > 0)
        (void)zn_edge_header_addf(req, "retry-after", "%d", e->retry_after); /* a small number always fits */
    if (text == NULL) /* out of memory in jansson: still answer with the status */
        return zn_edge_send(req, status != 0 ? status : e->status, NULL, NULL, 0);
    zn_edge_send(req, status != 0 ? status : e->status, "application/json", text, strlen(text));
    free(text);
    return 0;
}
