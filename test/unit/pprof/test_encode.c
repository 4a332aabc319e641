/* Unit tests for pprof/encode.c and pprof/profile.c: the profile.proto we write obeys the rules
 * go tool pprof enforces (string_table[0] == "", non-zero unique ids, every referenced id
 * exists, one value per sample type), is symbolized with our own function names, file and line,
 * gzips and round-trips, and the delta/merge arithmetic matches net/http/pprof's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pprof/internal.h"
#include "pprof/profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile_t;

static const zn_pprof_kind_t kind2 = {
    .nvalues = 2,
    .types = {{"samples", "count"}, {"cpu", "nanoseconds"}},
    .period_type = {"cpu", "nanoseconds"},
    .period = 10000000,
    .default_type = -1,
};

static const zn_pprof_kind_t kind4 = {
    .nvalues = 4,
    .types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}},
    .period_type = {"space", "bytes"},
    .period = 524288,
    .default_type = 1,
};

/* Two functions of our own to symbolize; noinline so they have addresses and DWARF of their own. */
__attribute__((noinline)) int zn_test_leaf_fn(int x)
{
    return x * 3 + 1;
}

__attribute__((noinline)) int zn_test_caller_fn(int x)
{
    return zn_test_leaf_fn(x) + 2;
}

static const char *str(const pb_profile_t *p, int64_t i)
{
    assert_true(i >= 0 && (size_t)i < p->n_string_table);
    return p->string_table[i];
}

/* The checks pprof's profile.CheckValid and its decoder apply, plus unique ids. */
static void check_valid(const pb_profile_t *p)
{
    assert_true(p->n_string_table > 0);
    assert_string_equal(p->string_table[0], "");
    for (size_t i = 0; i < p->n_sample; i++) {
        assert_int_equal(p->sample[i]->n_value, p->n_sample_type);
        for (size_t j = 0; j < p->sample[i]->n_location_id; j++) {
            uint64_t id = p->sample[i]->location_id[j];
            assert_true(id >= 1 && id <= p->n_location);
        }
    }
    for (size_t i = 0; i < p->n_location; i++) {
        const Perftools__Profiles__Location *l = p->location[i];
        assert_int_equal(l->id, i + 1); /* non-zero and unique */
        assert_true(l->mapping_id <= p->n_mapping);
        for (size_t j = 0; j < l->n_line; j++)
            assert_true(l->line[j]->function_id >= 1 && l->line[j]->function_id <= p->n_function);
    }
    for (size_t i = 0; i < p->n_function; i++) {
        assert_int_equal(p->function[i]->id, i + 1);
        str(p, p->function[i]->name);
        str(p, p->function[i]->filename);
    }
    for (size_t i = 0; i < p->n_mapping; i++) {
        assert_int_equal(p->mapping[i]->id, i + 1);
        str(p, p->mapping[i]->filename);
        str(p, p->mapping[i]->build_id);
    }
}

static pb_profile_t *roundtrip(const zn_pprof_profile_t *prof)
{
    zn_buf_t gz, raw;
    zn_buf_init(&gz, ZN_PPROF_BODY_MAX);
    assert_int_equal(zn_pprof_profile_encode(prof, &gz), ZN_OK);
    assert_true(gz.len > 18);
    assert_int_equal((unsigned char)gz.p[0], 0x1f); /* gzip magic */
    assert_int_equal((unsigned char)gz.p[1], 0x8b);

    /* inflate with windowBits 31 (gzip only), as Go's gzip reader would */
    zn_buf_init(&raw, ZN_PPROF_BODY_MAX);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 31), Z_OK);
    z.next_in = (Bytef *)gz.p;
    z.avail_in = (uInt)gz.len;
    unsigned char chunk[4096];
    int zr;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        zr = inflate(&z, Z_NO_FLUSH);
        assert_true(zr == Z_OK || zr == Z_STREAM_END);
        assert_int_equal(zn_buf_append(&raw, chunk, sizeof(chunk) - z.avail_out), ZN_OK);
    } while (zr != Z_STREAM_END);
    inflateEnd(&z);

    pb_profile_t *p = perftools__profiles__profile__unpack(NULL, raw.len, (const uint8_t *)raw.p);
    assert_non_null(p);
    check_valid(p);
    zn_buf_release(&gz);
    zn_buf_release(&raw);
    return p;
}

static const Perftools__Profiles__Function *loc_func(const pb_profile_t *p, uint64_t loc_id, size_t line_idx)
{
    const Perftools__Profiles__Location *l = p->location[loc_id - 1];
    assert_true(l->n_line > line_idx);
    return p->function[l->line[line_idx]->function_id - 1];
}

static void test_symbolized_cpu_profile(void **state)
{
    zn_pprof_profile_t prof;
    zn_pprof_profile_init(&prof, &kind2);
    uintptr_t stack[2] = {(uintptr_t)zn_test_leaf_fn + 1, (uintptr_t)zn_test_caller_fn + 4};
    int64_t v[2] = {3, 30000000};
    zn_pprof_label_t labels[2] = {{.key = "thread", .str = "worker-0"}, {.key = "route", .str = "blob_get"}};
    zn_pprof_profile_add(&prof, stack, 2, v, labels, 2);
    zn_pprof_profile_add(&prof, stack + 1, 1, v, labels, 1);
    zn_pprof_profile_comment(&prof, "dropped %d samples", 0);
    prof.duration_nanos = 5;

    pb_profile_t *p = roundtrip(&prof);
    assert_int_equal(p->n_sample, 2);
    assert_int_equal(p->n_sample_type, 2);
    assert_string_equal(str(p, p->sample_type[1]->type), "cpu");
    assert_string_equal(str(p, p->period_type->unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    assert_int_equal(p->duration_nanos, 5);
    assert_int_equal(p->n_comment, 1);
    assert_string_equal(str(p, p->comment[0]), "dropped 0 samples");
    assert_int_equal(p->sample[0]->value[1], 30000000);
    /* two distinct addresses -> two locations, shared by both samples */
    assert_int_equal(p->n_location, 2);
    assert_int_equal(p->sample[0]->location_id[1], p->sample[1]->location_id[0]);

    const Perftools__Profiles__Function *leaf = loc_func(p, p->sample[0]->location_id[0], 0);
    assert_string_equal(str(p, leaf->name), "zn_test_leaf_fn");
    assert_non_null(strstr(str(p, leaf->filename), "test_encode.c"));
    assert_true(p->location[p->sample[0]->location_id[0] - 1]->line[0]->line > 0);
    assert_string_equal(str(p, loc_func(p, p->sample[0]->location_id[1], 0)->name), "zn_test_caller_fn");

    /* labels */
    assert_int_equal(p->sample[0]->n_label, 2);
    assert_string_equal(str(p, p->sample[0]->label[0]->key), "thread");
    assert_string_equal(str(p, p->sample[0]->label[0]->str), "worker-0");
    assert_string_equal(str(p, p->sample[0]->label[1]->str), "blob_get");

    /* the executable's mapping comes first, symbolized, with a build id */
    assert_true(p->n_mapping >= 1);
    const Perftools__Profiles__Mapping *m = p->mapping[0];
    assert_non_null(strstr(str(p, m->filename), "unit_pprof_test_encode"));
    assert_true(m->has_functions && m->has_filenames && m->has_line_numbers);
    assert_true(strlen(str(p, m->build_id)) >= 16);
    assert_int_equal(p->location[0]->mapping_id, 1);
    assert_true(m->memory_start <= p->location[0]->address && p->location[0]->address < m->memory_limit);

    perftools__profiles__profile__free_unpacked(p, NULL);
    zn_pprof_profile_release(&prof);
}

static void test_default_type_and_numeric_label(void **state)
{
    zn_pprof_profile_t prof;
    zn_pprof_profile_init(&prof, &kind4);
    uintptr_t pc = (uintptr_t)zn_test_leaf_fn + 1;
    int64_t v[4] = {1, 2, 3, 4};
    zn_pprof_label_t l = {.key = "bytes", .num = 4096, .unit = "bytes"};
    zn_pprof_profile_add(&prof, &pc, 1, v, &l, 1);
    pb_profile_t *p = roundtrip(&prof);
    assert_string_equal(str(p, p->default_sample_type), "alloc_space");
    assert_int_equal(p->sample[0]->n_value, 4);
    assert_int_equal(p->sample[0]->value[3], 4);
    assert_int_equal(p->sample[0]->label[0]->num, 4096);
    assert_string_equal(str(p, p->sample[0]->label[0]->num_unit), "bytes");
    assert_int_equal(p->sample[0]->label[0]->str, 0);
    perftools__profiles__profile__free_unpacked(p, NULL);
    zn_pprof_profile_release(&prof);
}

static void test_empty_profile_is_valid(void **state)
{
    zn_pprof_profile_t prof;
    zn_pprof_profile_init(&prof, &kind4);
    pb_profile_t *p = roundtrip(&prof);
    assert_int_equal(p->n_sample, 0);
    assert_int_equal(p->n_sample_type, 4);
    perftools__profiles__profile__free_unpacked(p, NULL);
    zn_pprof_profile_release(&prof);
}

static void test_unknown_address(void **state)
{
    zn_pprof_profile_t prof;
    zn_pprof_profile_init(&prof, &kind2);
    uintptr_t pc = 0x10; /* mapped by nobody */
    int64_t v[2] = {1, 1};
    zn_pprof_profile_add(&prof, &pc, 1, v, NULL, 0);
    pb_profile_t *p = roundtrip(&prof);
    assert_int_equal(p->n_location, 1);
    assert_int_equal(p->location[0]->mapping_id, 0);
    assert_int_equal(p->location[0]->n_line, 0);
    assert_int_equal(p->location[0]->address, 0x10);
    perftools__profiles__profile__free_unpacked(p, NULL);
    zn_pprof_profile_release(&prof);
}

static void test_delta_and_merge(void **state)
{
    zn_pprof_profile_t p0, p1;
    uintptr_t a[2] = {0x1000, 0x2000}, b[1] = {0x3000};
    zn_pprof_label_t t0 = {.key = "thread", .str = "worker-0"}, t1 = {.key = "thread", .str = "worker-1"};
    int64_t v[4] = {1, 100, 1, 100}, w[4] = {2, 300, 0, 0};
    zn_pprof_profile_init(&p0, &kind4);
    zn_pprof_profile_init(&p1, &kind4);
    p0.time_nanos = 1000;
    p1.time_nanos = 5000;
    zn_pprof_profile_add(&p0, a, 2, v, &t0, 1); /* unchanged in p1: dropped */
    zn_pprof_profile_add(&p0, b, 1, v, &t0, 1); /* grows in p1 */
    zn_pprof_profile_add(&p1, a, 2, v, &t0, 1);
    zn_pprof_profile_add(&p1, b, 1, w, &t0, 1);
    zn_pprof_profile_add(&p1, b, 1, w, &t0, 1); /* same key twice: merged */
    zn_pprof_profile_add(&p1, b, 1, v, &t1, 1); /* other label: its own sample */
    zn_pprof_profile_sub(&p1, &p0);
    assert_int_equal(p1.duration_nanos, 4000);
    assert_int_equal(p1.nsamples, 2);
    assert_int_equal(p1.samples[0].values[0], 3);   /* 2 + 2 - 1 */
    assert_int_equal(p1.samples[0].values[1], 500); /* 300 + 300 - 100 */
    assert_int_equal(p1.samples[0].values[2], -1);  /* in-use went down: negative, as Go's delta */
    assert_string_equal(p1.samples[1].labels[0].str, "worker-1");
    assert_int_equal(zn_pprof_sample_pcs(&p1, &p1.samples[1])[0], 0x3000);
    zn_pprof_profile_release(&p0);
    zn_pprof_profile_release(&p1);
}

static void test_depth_and_label_caps(void **state)
{
    zn_pprof_profile_t prof;
    uintptr_t deep[ZN_PPROF_DEPTH_MAX + 10];
    zn_pprof_label_t labels[ZN_PPROF_LABELS_MAX + 2];
    int64_t v[2] = {1, 1};
    for (size_t i = 0; i < sizeof(deep) / sizeof(deep[0]); i++)
        deep[i] = 0x1000 + i;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        labels[i] = (zn_pprof_label_t){.key = "k", .str = "v"};
    zn_pprof_profile_init(&prof, &kind2);
    zn_pprof_profile_add(&prof, deep, sizeof(deep) / sizeof(deep[0]), v, labels, sizeof(labels) / sizeof(labels[0]));
    assert_int_equal(prof.samples[0].depth, ZN_PPROF_DEPTH_MAX);
    assert_int_equal(prof.samples[0].nlabels, ZN_PPROF_LABELS_MAX);
    zn_pprof_profile_release(&prof);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symbolized_cpu_profile), cmocka_unit_test(test_default_type_and_numeric_label),
        cmocka_unit_test(test_empty_profile_is_valid), cmocka_unit_test(test_unknown_address),
        cmocka_unit_test(test_delta_and_merge),        cmocka_unit_test(test_depth_and_label_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
