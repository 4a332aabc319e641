/*
 * pprof/encode.c - zn_pprof_profile_t to profile.proto (perftools.profiles), gzip'd.
 *
 * Every distinct address becomes one Location (symbolized here, in normal context, never in a
 * signal handler) with one Line per inline frame; functions are deduplicated by (name, file,
 * start line); strings by content, string_table[0] being "". Every executable mapping we know
 * is written (the executable's first, so pprof names the profile after it) and those holding
 * symbolized locations get has_functions (+ has_filenames, has_line_numbers, has_inline_frames
 * when filled) so go tool pprof neither re-symbolizes nor asks the server. The protobuf-c
 * structs are filled from a few flat arrays freed together.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pprof/internal.h"
#include "pprof/profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile_t;
typedef Perftools__Profiles__Sample pb_sample_t;
typedef Perftools__Profiles__Label pb_label_t;
typedef Perftools__Profiles__Location pb_location_t;
typedef Perftools__Profiles__Line pb_line_t;
typedef Perftools__Profiles__Function pb_function_t;
typedef Perftools__Profiles__Mapping pb_mapping_t;
typedef Perftools__Profiles__ValueType pb_vtype_t;

struct mapping_flags {
    bool used, funcs, files, lines, inlines;
};

struct enc {
    const zn_pprof_profile_t *p;
    /* strings */
    zn_htab_t str_index;
    const char **strs;
    size_t nstrs, cap_strs;
    /* locations: one per distinct address */
    zn_htab_t loc_index;
    zn_pprof_sym_t *syms;
    size_t nlocs, cap_locs;
    /* functions */
    zn_htab_t fn_index;
    pb_function_t *fns;
    size_t nfns, cap_fns;
    struct mapping_flags *mflags;
};

/* ---- tables ------------------------------------------------------------------------------------ */

struct str_probe {
    struct enc *e;
    const char *s;
};

static bool str_eq(void *ctx, uintptr_t i)
{
    struct str_probe *k = ctx;
    return strcmp(k->e->strs[i], k->s) == 0;
}

static int64_t str_id(struct enc *e, const char *s)
{
    struct str_probe k = {e, s != NULL ? s : ""};
    uint64_t h = zn_hash(k.s, strlen(k.s), 7);
    uintptr_t i;
    if (zn_htab_find(&e->str_index, h, str_eq, &k, &i))
        return (int64_t)i;
    if (e->nstrs == e->cap_strs) {
        e->cap_strs = e->cap_strs == 0 ? 256 : e->cap_strs * 2;
        e->strs = zn_realloc(e->strs, e->cap_strs * sizeof(*e->strs));
    }
    e->strs[e->nstrs] = k.s;
    zn_htab_insert(&e->str_index, h, (uint32_t)e->nstrs);
    return (int64_t)e->nstrs++;
}

struct addr_probe {
    struct enc *e;
    uintptr_t pc;
};

static bool loc_eq(void *ctx, uintptr_t i)
{
    struct addr_probe *k = ctx;
    return k->e->syms[i].pc == k->pc;
}

/* Location id (1-based) of pc, symbolizing it the first time. */
static uint64_t loc_id(struct enc *e, uintptr_t pc)
{
    struct addr_probe k = {e, pc};
    uint64_t h = zn_hash(&pc, sizeof(pc), 3);
    uintptr_t i;
    if (zn_htab_find(&e->loc_index, h, loc_eq, &k, &i))
        return (uint64_t)i + 1;
    if (e->nlocs == e->cap_locs) {
        e->cap_locs = e->cap_locs == 0 ? 256 : e->cap_locs * 2;
        e->syms = zn_realloc(e->syms, e->cap_locs * sizeof(*e->syms));
    }
    zn_pprof_sym_lookup(pc, &e->syms[e->nlocs]);
    zn_htab_insert(&e->loc_index, h, (uint32_t)e->nlocs);
    return ++e->nlocs;
}

struct fn_probe {
    struct enc *e;
    int64_t name, file, start_line;
};

static bool fn_eq(void *ctx, uintptr_t i)
{
    struct fn_probe *k = ctx;
    const pb_function_t *f = &k->e->fns[i];
    return f->name == k->name && f->filename == k->file && f->start_line == k->start_line;
}

static uint64_t fn_id(struct enc *e, const zn_pprof_frame_t *fr)
{
    struct fn_probe k = {e, str_id(e, fr->func), str_id(e, fr->file), fr->start_line};
    int64_t key[3] = {k.name, k.file, k.start_line};
    uint64_t h = zn_hash(key, sizeof(key), 5);
    uintptr_t i;
    if (zn_htab_find(&e->fn_index, h, fn_eq, &k, &i))
        return (uint64_t)i + 1;
    if (e->nfns == e->cap_fns) {
        e->cap_fns = e->cap_fns == 0 ? 256 : e->cap_fns * 2;
        e->fns = zn_realloc(e->fns, e->cap_fns * sizeof(*e->fns));
    }
    pb_function_t *f = &e->fns[e->nfns];
    perftools__profiles__function__init(f);
    f->id = e->nfns + 1;
    f->name = f->system_name = k.name;
    f->filename = k.file;
    f->start_line = k.start_line;
    zn_htab_insert(&e->fn_index, h, (uint32_t)e->nfns);
    return ++e->nfns;
}

/* ---- building the message ---------------------------------------------------------------------- */

struct pb {
    pb_profile_t prof;
    pb_vtype_t vtypes[ZN_PPROF_VALUES_MAX + 1], *vtype_ptrs[ZN_PPROF_VALUES_MAX];
    pb_sample_t *samples, **sample_ptrs;
    uint64_t *loc_ids;
    int64_t *values, *comments;
    pb_label_t *labels, **label_ptrs;
    pb_location_t *locs, **loc_ptrs;
    pb_line_t *lines, **line_ptrs;
    pb_function_t **fn_ptrs;
    pb_mapping_t *maps, **map_ptrs;
};

static void pb_free(struct pb *b)
{
    free(b->samples);
    free(b->sample_ptrs);
    free(b->loc_ids);
    free(b->values);
    free(b->comments);
    free(b->labels);
    free(b->label_ptrs);
    free(b->locs);
    free(b->loc_ptrs);
    free(b->lines);
    free(b->line_ptrs);
    free(b->fn_ptrs);
    free(b->maps);
    free(b->map_ptrs);
}

static void fill_label(struct enc *e, pb_label_t *l, const zn_pprof_label_t *in)
{
    perftools__profiles__label__init(l);
    l->key = str_id(e, in->key);
    if (in->str != NULL) {
        l->str = str_id(e, in->str);
    } else {
        l->num = in->num;
        if (in->unit != NULL)
            l->num_unit = str_id(e, in->unit);
    }
}

static void fill_samples(struct enc *e, struct pb *b)
{
    const zn_pprof_profile_t *p = e->p;
    size_t nv = p->kind->nvalues, nlabels = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        nlabels += p->samples[i].nlabels;
    b->samples = zn_calloc(p->nsamples + 1, sizeof(*b->samples));
    b->sample_ptrs = zn_calloc(p->nsamples + 1, sizeof(*b->sample_ptrs));
    b->loc_ids = zn_calloc(p->npcs + 1, sizeof(*b->loc_ids));
    b->values = zn_calloc(p->nsamples * nv + 1, sizeof(*b->values));
    b->labels = zn_calloc(nlabels + 1, sizeof(*b->labels));
    b->label_ptrs = zn_calloc(nlabels + 1, sizeof(*b->label_ptrs));
    size_t li = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const zn_pprof_sample_t *s = &p->samples[i];
        pb_sample_t *o = b->sample_ptrs[i] = &b->samples[i];
        perftools__profiles__sample__init(o);
        o->n_location_id = s->depth;
        o->location_id = b->loc_ids + s->pcs_off;
        for (uint32_t j = 0; j < s->depth; j++)
            o->location_id[j] = loc_id(e, zn_pprof_sample_pcs(p, s)[j]);
        o->n_value = nv;
        o->value = b->values + i * nv;
        memcpy(o->value, s->values, nv * sizeof(*o->value));
        o->n_label = s->nlabels;
        o->label = b->label_ptrs + li;
        for (uint32_t j = 0; j < s->nlabels; j++, li++) {
            b->label_ptrs[li] = &b->labels[li];
            fill_label(e, &b->labels[li], &s->labels[j]);
        }
    }
    b->prof.n_sample = p->nsamples;
    b->prof.sample = b->sample_ptrs;
}

static void fill_locations(struct enc *e, struct pb *b)
{
    size_t nlines = 0;
    for (size_t i = 0; i < e->nlocs; i++)
        nlines += (size_t)e->syms[i].nframes;
    b->locs = zn_calloc(e->nlocs + 1, sizeof(*b->locs));
    b->loc_ptrs = zn_calloc(e->nlocs + 1, sizeof(*b->loc_ptrs));
    b->lines = zn_calloc(nlines + 1, sizeof(*b->lines));
    b->line_ptrs = zn_calloc(nlines + 1, sizeof(*b->line_ptrs));
    size_t li = 0;
    for (size_t i = 0; i < e->nlocs; i++) {
        const zn_pprof_sym_t *sym = &e->syms[i];
        pb_location_t *l = b->loc_ptrs[i] = &b->locs[i];
        perftools__profiles__location__init(l);
        l->id = i + 1;
        l->address = sym->pc;
        l->mapping_id = sym->mapping >= 0 ? (uint64_t)sym->mapping + 1 : 0;
        l->n_line = (size_t)sym->nframes;
        l->line = b->line_ptrs + li;
        struct mapping_flags *mf = sym->mapping >= 0 ? &e->mflags[sym->mapping] : NULL;
        for (int j = 0; j < sym->nframes; j++, li++) {
            const zn_pprof_frame_t *fr = &sym->frames[j];
            b->line_ptrs[li] = &b->lines[li];
            perftools__profiles__line__init(&b->lines[li]);
            b->lines[li].function_id = fn_id(e, fr);
            b->lines[li].line = fr->line;
            if (mf != NULL) {
                mf->funcs |= fr->func[0] != '\0';
                mf->files |= fr->file[0] != '\0';
                mf->lines |= fr->line != 0;
            }
        }
        if (mf != NULL) {
            mf->used = true;
            mf->inlines |= sym->nframes > 1;
        }
    }
    b->prof.n_location = e->nlocs;
    b->prof.location = b->loc_ptrs;
}

static void fill_mappings(struct enc *e, struct pb *b, int nmaps)
{
    b->maps = zn_calloc((size_t)nmaps + 1, sizeof(*b->maps));
    b->map_ptrs = zn_calloc((size_t)nmaps + 1, sizeof(*b->map_ptrs));
    for (int i = 0; i < nmaps; i++) {
        const zn_pprof_mapping_t *m = zn_pprof_sym_mapping(i);
        const struct mapping_flags *mf = &e->mflags[i];
        pb_mapping_t *o = b->map_ptrs[i] = &b->maps[i];
        perftools__profiles__mapping__init(o);
        o->id = (uint64_t)i + 1;
        o->memory_start = m->start;
        o->memory_limit = m->limit;
        o->file_offset = m->offset;
        o->filename = str_id(e, m->file);
        o->build_id = str_id(e, m->build_id);
        /* we tried every address in a used mapping: tell pprof not to try again */
        o->has_functions = mf->used;
        o->has_filenames = mf->files;
        o->has_line_numbers = mf->lines;
        o->has_inline_frames = mf->inlines;
    }
    b->prof.n_mapping = (size_t)nmaps;
    b->prof.mapping = b->map_ptrs;
}

static void fill_header(struct enc *e, struct pb *b)
{
    const zn_pprof_kind_t *k = e->p->kind;
    for (size_t i = 0; i < k->nvalues; i++) {
        perftools__profiles__value_type__init(&b->vtypes[i]);
        b->vtypes[i].type = str_id(e, k->types[i].type);
        b->vtypes[i].unit = str_id(e, k->types[i].unit);
        b->vtype_ptrs[i] = &b->vtypes[i];
    }
    b->prof.n_sample_type = k->nvalues;
    b->prof.sample_type = b->vtype_ptrs;
    pb_vtype_t *pt = &b->vtypes[ZN_PPROF_VALUES_MAX];
    perftools__profiles__value_type__init(pt);
    pt->type = str_id(e, k->period_type.type);
    pt->unit = str_id(e, k->period_type.unit);
    b->prof.period_type = pt;
    b->prof.period = k->period;
    if (k->default_type >= 0)
        b->prof.default_sample_type = str_id(e, k->types[k->default_type].type);
    b->prof.time_nanos = e->p->time_nanos;
    b->prof.duration_nanos = e->p->duration_nanos;
    b->comments = zn_calloc(e->p->ncomments + 1, sizeof(*b->comments));
    for (size_t i = 0; i < e->p->ncomments; i++)
        b->comments[i] = str_id(e, e->p->comments[i]);
    b->prof.n_comment = e->p->ncomments;
    b->prof.comment = b->comments;
}

static void enc_release(struct enc *e)
{
    zn_htab_release(&e->str_index);
    zn_htab_release(&e->loc_index);
    zn_htab_release(&e->fn_index);
    free(e->strs);
    free(e->syms);
    free(e->fns);
    free(e->mflags);
}

zn_err_t zn_pprof_profile_serialize(const zn_pprof_profile_t *p, zn_buf_t *out)
{
    struct enc e = {.p = p};
    struct pb b = {0};
    zn_err_t err = ZN_ETOOBIG;

    perftools__profiles__profile__init(&b.prof);
    str_id(&e, ""); /* string_table[0] must be "" */
    fill_header(&e, &b);
    /* mapping flags are indexed by symbolizer mapping; symbolizing may discover new ones */
    e.mflags = zn_calloc(ZN_PPROF_MAPPINGS_MAX + 1, sizeof(*e.mflags));
    fill_samples(&e, &b);
    fill_locations(&e, &b);
    fill_mappings(&e, &b, zn_pprof_sym_mapping_count());
    b.prof.n_function = e.nfns;
    b.fn_ptrs = zn_calloc(e.nfns + 1, sizeof(*b.fn_ptrs));
    for (size_t i = 0; i < e.nfns; i++)
        b.fn_ptrs[i] = &e.fns[i];
    b.prof.function = b.fn_ptrs;
    b.prof.n_string_table = e.nstrs;
    b.prof.string_table = (char **)e.strs;

    size_t len = perftools__profiles__profile__get_packed_size(&b.prof);
    if (len > out->max - out->len)
        goto done;
    char *tmp = zn_malloc(len + 1);
    perftools__profiles__profile__pack(&b.prof, (uint8_t *)tmp);
    err = zn_buf_append(out, tmp, len);
    free(tmp);
done:
    pb_free(&b);
    enc_release(&e);
    return err;
}

zn_err_t zn_pprof_gzip(const void *in, size_t len, zn_buf_t *out)
{
    z_stream z;
    unsigned char chunk[64 * 1024];
    zn_err_t err = ZN_OK;
    int zr;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ZN_ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len; /* callers stay far below 4 GiB (ZN_PPROF_BODY_MAX) */
    do {
        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        zr = deflate(&z, Z_FINISH);
        if (zr == Z_STREAM_ERROR) {
            err = ZN_EIO;
            break;
        }
        if ((err = zn_buf_append(out, chunk, sizeof(chunk) - z.avail_out)) != ZN_OK)
            break;
    } while (zr != Z_STREAM_END);
    deflateEnd(&z);
    return err;
}

zn_err_t zn_pprof_profile_encode(const zn_pprof_profile_t *p, zn_buf_t *out)
{
    zn_buf_t raw;
    zn_err_t err;

    zn_buf_init(&raw, ZN_PPROF_BODY_MAX);
    if ((err = zn_pprof_profile_serialize(p, &raw)) == ZN_OK)
        err = zn_pprof_gzip(raw.p, raw.len, out);
    zn_buf_release(&raw);
    return err;
}
