/*
 * config/duration.c - Go duration strings ("90s", "1h30m", "1.5h", "-2m") as zot reads them
 * with time.ParseDuration.
 *
 * The grammar is [-+]("0" | (<digits>[.<digits>]<unit>)+), units ns us µs μs ms s m h. The
 * magnitude is accumulated in an uint64_t capped at 2^63 so that the signed result fits an
 * int64 like Go's; fractions beyond what fits are dropped, as Go drops them, and scaled in
 * double precision, as Go does.
 */
#include <string.h>

#include "config/internal.h"

#define DUR_LIMIT ((uint64_t)1 << 63)

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static bool at_digit(const cursor_t *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* Leading integer of a component; ZN_ERANGE past 2^63. */
static zn_err_t take_int(cursor_t *c, uint64_t *v, bool *any)
{
    *v = 0;
    *any = false;
    for (; at_digit(c); c->p++) {
        *any = true;
        if (*v > DUR_LIMIT / 10)
            return ZN_ERANGE;
        *v = *v * 10 + (uint64_t)(*c->p - '0');
        if (*v > DUR_LIMIT)
            return ZN_ERANGE;
    }
    return ZN_OK;
}

/* Fraction digits after '.': value f over scale; digits that no longer fit are skipped. */
static void take_frac(cursor_t *c, uint64_t *f, double *scale, bool *any)
{
    bool full = false;
    *f = 0;
    *scale = 1;
    for (; at_digit(c); c->p++) {
        *any = true;
        if (full || *f > (DUR_LIMIT - 1) / 10) {
            full = true;
            continue;
        }
        *f = *f * 10 + (uint64_t)(*c->p - '0');
        *scale *= 10;
    }
}

static uint64_t take_unit(cursor_t *c)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {{"ns", 1},       {"us", 1000},         {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
                 {"ms", 1000000}, {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
    const char *start = c->p;
    while (c->p < c->end && *c->p != '.' && !(*c->p >= '0' && *c->p <= '9'))
        c->p++;
    size_t n = (size_t)(c->p - start);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == n && memcmp(units[i].name, start, n) == 0)
            return units[i].ns;
    }
    return 0;
}

/* One <number><unit> component added to *total. */
static zn_err_t take_component(cursor_t *c, uint64_t *total)
{
    uint64_t v, f = 0, unit;
    double scale = 1;
    bool any;
    zn_err_t err;

    if ((err = take_int(c, &v, &any)) != ZN_OK)
        return err;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        take_frac(c, &f, &scale, &any);
    }
    if (!any || (unit = take_unit(c)) == 0)
        return ZN_EINVAL;
    if (v > DUR_LIMIT / unit)
        return ZN_ERANGE;
    v *= unit;
    if (f > 0) {
        v += (uint64_t)((double)f * ((double)unit / scale));
        if (v > DUR_LIMIT)
            return ZN_ERANGE;
    }
    if (v > DUR_LIMIT - *total)
        return ZN_ERANGE;
    *total += v;
    return ZN_OK;
}

zn_err_t cfg_duration_parse(const char *s, size_t n, bool *neg, uint64_t *ns)
{
    cursor_t c = {s, s + n};
    uint64_t total = 0;
    zn_err_t err;

    *neg = false;
    if (c.p < c.end && (*c.p == '-' || *c.p == '+'))
        *neg = *c.p++ == '-';
    if (c.end - c.p == 1 && *c.p == '0') {
        *ns = 0;
        return ZN_OK;
    }
    if (c.p == c.end)
        return ZN_EINVAL;
    while (c.p < c.end) {
        if ((err = take_component(&c, &total)) != ZN_OK)
            return err;
    }
    if (!*neg && total == DUR_LIMIT)
        return ZN_ERANGE;
    *ns = total;
    return ZN_OK;
}

zn_err_t zn_config_parse_duration(const char *s, uint64_t *ns)
{
    bool neg;
    uint64_t v;
    zn_err_t err = cfg_duration_parse(s, strlen(s), &neg, &v);

    if (err != ZN_OK)
        return err;
    if (neg && v != 0)
        return ZN_ERANGE;
    *ns = v;
    return ZN_OK;
}
