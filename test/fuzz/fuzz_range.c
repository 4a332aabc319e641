/*
 * test/fuzz/fuzz_range.c - the Range header of blob GETs and the Content-Range of upload
 * PATCHes (api/parse.c). The first 8 bytes (little-endian, when present) are the blob size
 * the Range is resolved against; the rest is the header value. A satisfiable Range lies
 * inside the blob, a Content-Range never runs backwards,
 * and either, written back out plainly, parses to the same range.
 */
#include "api/internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t blob = 0;
    size_t skip = size >= 8 ? 8 : 0;
    for (size_t i = 0; i < skip; i++)
        blob |= (uint64_t)data[i] << (8 * i);
    /* small sizes are where the edge cases are; keep most inputs there */
    if (skip != 0 && (data[7] & 0x80) == 0)
        blob %= 4096;
    size_t n = size - skip;
    char *buf = malloc(n != 0 ? n : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data + skip, n);
    zn_slice_t h = zn_slice(buf, n);

    zn_api_range_t r;
    zn_err_t err = zn_api_range_parse(h, blob, &r);
    FZ_CHECK(err == ZN_OK || err == ZN_ERANGE || err == ZN_EINVAL);
    if (err == ZN_OK) {
        FZ_CHECK(r.first <= r.last && r.last < blob);
        /* the resolved range, written out plainly, parses to itself */
        char again[64];
        zn_api_range_t r2;
        int len = snprintf(again, sizeof(again), "bytes=%llu-%llu", (unsigned long long)r.first, (unsigned long long)r.last);
        FZ_CHECK(zn_api_range_parse(zn_slice(again, (size_t)len), blob, &r2) == ZN_OK);
        FZ_CHECK(r2.first == r.first && r2.last == r.last);
    }

    err = zn_api_content_range_parse(h, &r);
    FZ_CHECK(err == ZN_OK || err == ZN_EINVAL);
    if (err == ZN_OK) {
        FZ_CHECK(r.first <= r.last);
        char again[64];
        zn_api_range_t r2;
        int len = snprintf(again, sizeof(again), "%llu-%llu", (unsigned long long)r.first, (unsigned long long)r.last);
        FZ_CHECK(zn_api_content_range_parse(zn_slice(again, (size_t)len), &r2) == ZN_OK);
        FZ_CHECK(r2.first == r.first && r2.last == r.last);
    }
    free(buf);
    return 0;
}
