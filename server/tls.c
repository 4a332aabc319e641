/*
 * server/tls.c - the SSL_CTX behind http.tls: certificate chain and key, HTTP/2 offered by
 * ALPN (h2o picks h2 or http/1.1 per connection), and client-certificate verification
 * (mTLS) against http.tls.cacert when it is set. The certificate is a gate at the
 * handshake only: zinc takes no identity from it (zot's http.auth.mtls is not implemented).
 */
#include <stdio.h>

#include <h2o.h>
#include <openssl/err.h>

#include "auth/auth.h"
#include "server/server.h"

static void ssl_error(char *err, size_t errlen, const char *key, const char *path)
{
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    zn_errf(err, errlen, "%s: cannot load %s: %s", key, path, reason);
}

/* mTLS as zot does it: clients are asked for a certificate signed by cacert; it is required
 * at the handshake unless htpasswd or an anonymousPolicy can let a request in otherwise,
 * in which case a certificate is verified only if the client sends one. */
static bool setup_client_certs(SSL_CTX *ctx, const zn_config_t *cfg, char *err, size_t errlen)
{
    const char *ca = cfg->http.tls.cacert;
    static const unsigned char sid_ctx[] = "zinc";
    STACK_OF(X509_NAME) *names = NULL;

    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 || (names = SSL_load_client_CA_file(ca)) == NULL) {
        ssl_error(err, errlen, "http.tls.cacert", ca);
        return false;
    }
    /* the CA names go in the CertificateRequest so clients pick the right certificate */
    SSL_CTX_set_client_CA_list(ctx, names);
    /* resumed sessions of a verifying server need an id context, or OpenSSL fails them */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    int mode = SSL_VERIFY_PEER;
    if (zn_auth_config_requires_client_cert(cfg))
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return true;
}

zn_err_t zn_tls_ctx_new(const zn_config_t *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    const char *cert = cfg->http.tls.cert, *key = cfg->http.tls.key, *ca = cfg->http.tls.cacert;
    SSL_CTX *ctx = NULL;

    *out = NULL;
    if (cert == NULL && key == NULL)
        return ZN_OK; /* off */
    if (cert == NULL || key == NULL) {
        zn_errf(err, errlen, "http.tls: both cert and key are required");
        return ZN_EINVAL;
    }
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        ssl_error(err, errlen, "http.tls", "an SSL context");
        return ZN_EIO;
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
    if (ca != NULL && !setup_client_certs(ctx, cfg, err, errlen))
        goto fail;
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    *out = ctx;
    return ZN_OK;
fail:
    SSL_CTX_free(ctx);
    return ZN_EIO;
}
