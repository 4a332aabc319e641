/*
 * test/fuzz/fuzz_digest.c - digests (storage/digest.c zn_digest_parse), read from paths,
 * ?digest=, ?mount= and manifest descriptors. An accepted digest re-serialises to exactly the
 * input (zinc accepts only the canonical form), names its algorithm, and parses again to an
 * equal value.
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
    /* what zinc computes itself must always be accepted */
    zn_digest_of(size % 2 == 0 ? ZN_DIGEST_SHA256 : ZN_DIGEST_SHA512, buf, size, &d);
    FZ_CHECK(zn_digest_parse(zn_slice(d.str, d.len), &again) == ZN_OK && zn_digest_eq(&d, &again));
    free(buf);
    return 0;
}
