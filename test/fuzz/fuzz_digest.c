/*
 * test/fuzz/fuzz_digest.c - digests (storage/digest.c zn_digest_parse), read from paths,
 * ?digest=, ?mount= and manifest descriptors. An accepted digest re-serialises to exactly the
 * input (zinc accepts only the canonical form), names its algorithm, and parses again to an
 * equal value. The same bytes are read as an upload's saved SHA-256 state (zn_hash_import, from
 * an S3 tail object's x-amz-meta-zinc-sha256): an accepted one exports to a text that imports
 * to the same count and state.
 */
#include "fuzz.h"
#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size != 0 ? size : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    zn_digest_t d, again;
    zn_err_t err = zn_digest_parse(zn_slice(buf, size), &d);
    FZ_CHECK(err == ZN_OK || err == ZN_EINVAL || err == ZN_EUNSUPP);
    if (err == ZN_OK) {
        FZ_CHECK(d.len == size && strlen(d.str) == d.len && memcmp(d.str, buf, size) == 0);
        const char *algo = zn_digest_algo_name(d.algo);
        size_t alen = strlen(algo), hexlen = d.algo == ZN_DIGEST_SHA256 ? 64 : 128;
        FZ_CHECK(d.len == alen + 1 + hexlen && memcmp(d.str, algo, alen) == 0 && d.str[alen] == ':');
        FZ_CHECK(zn_digest_hex(&d) == d.str + alen + 1 && strspn(zn_digest_hex(&d), "0123456789abcdef") == hexlen);
        FZ_CHECK(zn_digest_parse(zn_slice(d.str, d.len), &again) == ZN_OK && zn_digest_eq(&d, &again));
    }
    zn_hash_t *h, *h2;
    uint64_t count, count2;
    err = zn_hash_import(buf, size, &h, &count);
    FZ_CHECK(err == ZN_OK || err == ZN_EINVAL);
    if (err == ZN_OK) {
        char text[ZN_HASH_STATE_MAX], text2[ZN_HASH_STATE_MAX];
        FZ_CHECK(zn_hash_export(h, text, &count2) == ZN_OK && count2 == count);
        FZ_CHECK(zn_hash_import(text, strlen(text), &h2, &count2) == ZN_OK && count2 == count);
        FZ_CHECK(zn_hash_export(h2, text2, &count2) == ZN_OK && strcmp(text, text2) == 0);
        zn_hash_update(h2, buf, size);
        zn_hash_final(h2, &d);
        zn_hash_free(h2);
        zn_hash_free(h);
    }
    /* what zinc computes itself must always be accepted */
    zn_digest_of(size % 2 == 0 ? ZN_DIGEST_SHA256 : ZN_DIGEST_SHA512, buf, size, &d);
    FZ_CHECK(zn_digest_parse(zn_slice(d.str, d.len), &again) == ZN_OK && zn_digest_eq(&d, &again));
    free(buf);
    return 0;
}
