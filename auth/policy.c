/*
 * auth/policy.c - zot's authorization rules (docs/zot.md §3) over the config structs.
 *
 * The repository patterns are compiled once and sorted so that the first one matching a
 * name is zot's winner: the longest pattern string, and among equal lengths the
 * strcmp-smaller one (zot picks at random there). Only that block counts; inside it the
 * user's own policies, its groups' policies and defaultPolicy apply to logged-in users,
 * anonymousPolicy to anonymous ones only. adminPolicy then adds its actions for its users
 * and groups everywhere, matched pattern or not. Names compare exactly; "*" is not a
 * wildcard. Everything here is read-only after init, so no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

static int rule_cmp(const void *a, const void *b)
{
    const zn_auth_rule_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return strcmp(x->cfg->pattern, y->cfg->pattern);
}

zn_err_t zn_auth_policy_init(zn_auth_policy_t *p, const zn_config_access_t *access, char *errbuf, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->access = access;
    if (access == NULL || access->nrepos == 0)
        return ZN_OK;
    p->rules = zn_calloc(access->nrepos, sizeof(*p->rules));
    for (size_t i = 0; i < access->nrepos; i++) {
        const zn_config_repo_access_t *r = &access->repos[i];
        zn_err_t err = zn_glob_compile(r->pattern, &p->rules[i].glob);
        if (err != ZN_OK) {
            zn_errf(errbuf, errlen, "http.accessControl.repositories: \"%s\": %s", r->pattern,
                    err == ZN_ETOOBIG ? "too many {} alternatives" : "invalid glob pattern");
            zn_auth_policy_release(p);
            return ZN_EINVAL;
        }
        p->rules[i].cfg = r;
        p->rules[i].len = strlen(r->pattern);
        p->nrules++;
    }
    p->has_anonymous = zn_auth_policy_anonymous_exists(access);
    qsort(p->rules, p->nrules, sizeof(*p->rules), rule_cmp);
    return ZN_OK;
}

bool zn_auth_policy_anonymous_exists(const zn_config_access_t *access)
{
    for (size_t i = 0; access != NULL && i < access->nrepos; i++)
        if (access->repos[i].anonymous_actions != 0)
            return true;
    return false;
}

void zn_auth_policy_release(zn_auth_policy_t *p)
{
    for (size_t i = 0; i < p->nrules; i++)
        zn_glob_release(&p->rules[i].glob);
    free(p->rules);
    memset(p, 0, sizeof(*p));
}

const zn_auth_rule_t *zn_auth_policy_rule(const zn_auth_policy_t *p, const char *repo)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (zn_glob_match(&p->rules[i].glob, repo))
            return &p->rules[i];
    return NULL;
}

bool zn_auth_policy_in_list(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

bool zn_auth_policy_in_group(const zn_auth_policy_t *p, const char *user, const char *group)
{
    for (size_t i = 0; i < p->access->ngroups; i++) {
        const zn_config_group_t *g = &p->access->groups[i];
        if (strcmp(g->name, group) == 0 && zn_auth_policy_in_list(g->users, g->nusers, user))
            return true;
    }
    return false;
}

/* Does policy name the user, directly or through one of its groups? */
static bool names_user(const zn_auth_policy_t *p, const zn_config_policy_t *pol, const char *user)
{
    if (zn_auth_policy_in_list(pol->users, pol->nusers, user))
        return true;
    for (size_t i = 0; i < pol->ngroups; i++)
        if (zn_auth_policy_in_group(p, user, pol->groups[i]))
            return true;
    return false;
}

bool zn_auth_policy_is_admin(const zn_auth_policy_t *p, const char *user)
{
    if (user == NULL)
        return false;
    if (p->access == NULL)
        return true;
    return names_user(p, &p->access->admin, user);
}

unsigned zn_auth_policy_actions(const zn_auth_policy_t *p, const char *user, const char *repo)
{
    unsigned got = 0;

    if (p->access == NULL)
        return ZN_ACT_READ | ZN_ACT_CREATE | ZN_ACT_UPDATE | ZN_ACT_DELETE;
    const zn_auth_rule_t *rule = zn_auth_policy_rule(p, repo);
    if (rule != NULL && user == NULL)
        got = rule->cfg->anonymous_actions;
    if (rule != NULL && user != NULL) {
        got = rule->cfg->default_actions;
        for (size_t i = 0; i < rule->cfg->npolicies; i++)
            if (names_user(p, &rule->cfg->policies[i], user))
                got |= rule->cfg->policies[i].actions;
    }
    if (user != NULL && names_user(p, &p->access->admin, user))
        got |= p->access->admin.actions;
    return got;
}
