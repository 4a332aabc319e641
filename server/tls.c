/*
 * server/tls.c - the SSL_CTX behind http.tls: certificate chain and key, HTTP/2 offered by
 * ALPN (h2o picks h2 or http/1.1 per connection), and client-certificate verification
 * (mTLS) against http.tls.cacert when it is set.
 */
#include <stdio.h>

#include <h2o.h>
#include <openssl/err.h>

#include "server/server.h"

static void ssl_error(char *err, size_t errlen, const char *key, const char *path)
{
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    snprintf(err, errlen, "%s: cannot load %s: %s", key, path, reason);
}

SSL_CTX *zn_tls_ctx_new(const zn_config_t *cfg, char *err, size_t errlen)
{
    const char *cert = cfg->http.tls.cert, *key = cfg->http.tls.key, *ca = cfg->http.tls.cacert;
    SSL_CTX *ctx = NULL;

    err[0] = '\0';
    if (cert == NULL && key == NULL)
        return NULL;
    if (cert == NULL || key == NULL) {
        snprintf(err, errlen, "http.tls: both cert and key are required");
        return NULL;
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        ssl_error(err, errlen, "http.tls", "an SSL context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_error(err, errlen, "http.tls.cert", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, errlen, "http.tls.key", key);
        goto fail;
    }
    if (ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            ssl_error(err, errlen, "http.tls.cacert", ca);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
