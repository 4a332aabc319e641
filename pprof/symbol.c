/*
 * pprof/symbol.c - zinc symbolizes its own addresses (go tool pprof cannot: it would need the
 * same binaries at the same paths, and never symbolizes shared libraries).
 *
 * libdwfl is pointed at our own pid (dwfl_linux_proc_report), which reports every mapped ELF
 * file; for an address we take the ELF symbol (function start, name without @VERSION), the
 * line table row (file, line) and, when DWARF is there, the chain of inlined subroutines so
 * that pprof shows inline frames as Go's own profiles do. Debug info is looked up in the file
 * itself, then under /usr/lib/debug by build id or path; never over the network (we do not use
 * the standard callback because it asks debuginfod when DEBUGINFOD_URLS is set).
 *
 * The executable mappings of /proc/self/maps (with build ids) form an append-only table that is
 * read without a lock; it is refreshed, at most once a second, when an address falls outside it
 * (a library dlopen'ed later). Results are cached by address up to CACHE_MAX entries; strings
 * are interned and never freed. One mutex guards libdwfl, the cache and the string set.
 *
 * Several ELF symbols often share one address (glibc: __libc_read, __GI_read, __read, read).
 * libdwfl returns whichever its rules pick (a local __libc_read when the debug symbols are
 * there); perf and gdb show the public one. So for a function start we choose among all the
 * symbols at that address: global or weak over local, no leading underscore, then the
 * shortest name (pwrite over pwrite64), then strcmp; the choice is cached by address.
 */
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pprof/internal.h"

#define CACHE_MAX (1u << 17)
#define MAPS_FILE_MAX (8u << 20)

static struct {
    zn_mutex_t lock; /* guards everything below but maps/nmaps readers */
    Dwfl *dwfl;
    uint64_t refreshed_ns;
    zn_htab_t str_index;
    char **strs;
    size_t nstrs, cap_strs;
    zn_htab_t cache_index;
    zn_pprof_sym_t *cache;
    size_t ncache, cap_cache;
    zn_htab_t alias_index; /* function start -> aliases[] */
    struct alias {
        uintptr_t start;
        const char *name; /* interned, no @VERSION */
    } * aliases;
    size_t naliases, cap_aliases;
    /* append-only; an entry is complete before nmaps covers it (release) */
    zn_pprof_mapping_t maps[ZN_PPROF_MAPPINGS_MAX];
    _Atomic int nmaps;
} S = {.lock = ZN_MUTEX_INITIALIZER("pprof symbolizer")};

/* ---- interned strings ---------------------------------------------------------------------- */

struct str_key {
    const char *s;
    size_t n;
};

static bool str_eq(void *ctx, uintptr_t i)
{
    struct str_key *k = ctx;
    return strncmp(S.strs[i], k->s, k->n) == 0 && S.strs[i][k->n] == '\0';
}

static const char *intern_n(const char *s, size_t n)
{
    struct str_key k = {s, n};
    uint64_t h = zn_hash(s, n, 0);
    uintptr_t i;
    if (zn_htab_find(&S.str_index, h, str_eq, &k, &i))
        return S.strs[i];
    if (S.nstrs == S.cap_strs) {
        S.cap_strs = S.cap_strs == 0 ? 256 : S.cap_strs * 2;
        S.strs = zn_realloc(S.strs, S.cap_strs * sizeof(*S.strs));
    }
    S.strs[S.nstrs] = zn_slice_dup(zn_slice(s, n));
    zn_htab_insert(&S.str_index, h, (uint32_t)S.nstrs);
    return S.strs[S.nstrs++];
}

static const char *intern(const char *s)
{
    return s == NULL ? "" : intern_n(s, strlen(s));
}

/* ELF names of versioned symbols carry "@VERSION" or "@@VERSION". */
static const char *intern_symbol(const char *s)
{
    if (s == NULL)
        return "";
    const char *at = strchr(s, '@');
    return intern_n(s, at != NULL ? (size_t)(at - s) : strlen(s));
}

/* ---- debug info lookup ---------------------------------------------------------------------- */

static int open_debug(const char *path, char **found)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        *found = zn_strdup(path);
    return fd;
}

/* libdwfl calls this when the file has no DWARF of its own: try the build-id tree, then the
 * path mirror under /usr/lib/debug. Returns an fd libdwfl owns, or -1. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base, const char *file_name,
                          const char *debuglink_file, GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    char path[4096];
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(mod, &bits, &vaddr);
    if (n > 2) {
        int off = snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", bits[0]), w = -1;
        for (int i = 1; i < n && off > 0 && off + 3 < (int)sizeof(path); i++)
            off = snprintf(path + off, sizeof(path) - off, "%02x", bits[i]) == 2 ? off + 2 : -1;
        if (off > 0 && off + 3 < (int)sizeof(path)) /* else the id did not fit: no such debug file */
            w = snprintf(path + off, sizeof(path) - off, ".debug");
        if (w > 0 && off + w < (int)sizeof(path)) {
            int fd = open_debug(path, debuginfo_file_name);
            if (fd >= 0)
                return fd;
        }
    }
    if (file_name != NULL && file_name[0] == '/') {
        int w = snprintf(path, sizeof(path), "/usr/lib/debug%s.debug", file_name);
        if (w > 0 && w < (int)sizeof(path))
            return open_debug(path, debuginfo_file_name);
    }
    errno = ENOENT;
    return -1;
}

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* ---- mappings -------------------------------------------------------------------------------- */

static const char *hex_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *start = p;
    for (; p < end && p - start < 16; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (d < 0)
            break;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return p == start ? NULL : p;
}

static const char *skip_field(const char *p, const char *end)
{
    while (p < end && *p != ' ')
        p++;
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* One line of /proc/self/maps: "start-limit perms offset dev inode   path". Returns false for
 * lines we do not keep (not executable, anonymous). */
static bool parse_maps_line(const char *p, const char *end, zn_pprof_mapping_t *m, zn_slice_t *path)
{
    uint64_t start, limit, offset;
    if ((p = hex_u64(p, end, &start)) == NULL || p == end || *p++ != '-' || (p = hex_u64(p, end, &limit)) == NULL)
        return false;
    if (end - p < 5 || p[0] != ' ' || p[3] != 'x')
        return false;
    p = skip_field(p + 1, end);
    if ((p = hex_u64(p, end, &offset)) == NULL)
        return false;
    p = skip_field(skip_field(skip_field(p, end), end), end);
    if (p == end)
        return false;
    *m = (zn_pprof_mapping_t){.start = start, .limit = limit, .offset = offset};
    *path = zn_slice(p, (size_t)(end - p));
    return true;
}

static bool have_mapping(const zn_pprof_mapping_t *m, const char *file)
{
    for (int i = 0; i < S.nmaps; i++) {
        const zn_pprof_mapping_t *o = &S.maps[i];
        if (o->start == m->start && o->limit == m->limit && o->offset == m->offset && o->file == file)
            return true;
    }
    return false;
}

static const char *build_id_of(uintptr_t addr)
{
    Dwfl_Module *mod = dwfl_addrmodule(S.dwfl, addr);
    const unsigned char *bits;
    GElf_Addr vaddr, bias;
    /* the build id is read from the ELF notes, so the file must be opened first */
    int n = mod != NULL && dwfl_module_getelf(mod, &bias) != NULL ? dwfl_module_build_id(mod, &bits, &vaddr) : -1;
    if (n <= 0)
        return "";
    char hex[2 * 64 + 1];
    if (n > 64)
        n = 64;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        hex[2 * i] = digits[bits[i] >> 4];
        hex[2 * i + 1] = digits[bits[i] & 15];
    }
    hex[2 * n] = '\0';
    return intern(hex);
}

/* Adds the executable mappings not seen yet; with main_only just the executable's own. */
static void add_mappings(const zn_buf_t *b, const char *exe, bool main_only)
{
    const char *p = b->p, *end = b->p + b->len;
    while (p < end && S.nmaps < ZN_PPROF_MAPPINGS_MAX) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        zn_pprof_mapping_t m;
        zn_slice_t path;
        if (parse_maps_line(p, eol, &m, &path)) {
            m.file = intern_n(path.p, path.n);
            m.is_main = strcmp(m.file, exe) == 0;
            if (m.is_main == main_only && !have_mapping(&m, m.file)) {
                m.build_id = build_id_of(m.start);
                S.maps[S.nmaps] = m;
                atomic_store_explicit(&S.nmaps, S.nmaps + 1, memory_order_release);
            }
        }
        p = eol + 1;
    }
}

/* (Re)reports our modules to libdwfl and refreshes the mapping table. Lock held. */
static void refresh(void)
{
    zn_buf_t maps;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';

    S.refreshed_ns = zn_now_mono_ns();
    if (S.dwfl == NULL) {
        if ((S.dwfl = dwfl_begin(&callbacks)) == NULL)
            return;
        dwfl_report_begin(S.dwfl);
    } else {
        dwfl_report_begin_add(S.dwfl);
    }
    dwfl_linux_proc_report(S.dwfl, getpid());
    dwfl_report_end(S.dwfl, NULL, NULL);

    if (zn_file_read("/proc/self/maps", MAPS_FILE_MAX, &maps, NULL) == ZN_OK) {
        add_mappings(&maps, intern(exe), true);
        add_mappings(&maps, intern(exe), false);
        zn_buf_release(&maps);
    }
}

static int find_mapping(uintptr_t pc)
{
    /* newest first: a range reused after dlclose belongs to the latest file */
    for (int i = atomic_load_explicit(&S.nmaps, memory_order_acquire) - 1; i >= 0; i--) {
        if (pc >= S.maps[i].start && pc < S.maps[i].limit)
            return i;
    }
    return -1;
}

int zn_pprof_sym_mapping_count(void)
{
    zn_mutex_lock(&S.lock);
    if (S.dwfl == NULL)
        refresh();
    zn_mutex_unlock(&S.lock);
    return atomic_load_explicit(&S.nmaps, memory_order_acquire);
}

const zn_pprof_mapping_t *zn_pprof_sym_mapping(int i)
{
    if (i < 0 || i >= atomic_load_explicit(&S.nmaps, memory_order_acquire))
        return NULL;
    return &S.maps[i];
}

/* ---- one address ------------------------------------------------------------------------------ */

struct pc_key {
    uintptr_t pc;
};

static bool alias_eq(void *ctx, uintptr_t i)
{
    return S.aliases[i].start == ((struct pc_key *)ctx)->pc;
}

static int attr_int(Dwarf_Die *die, int name)
{
    Dwarf_Attribute a;
    Dwarf_Word w;
    if (dwarf_attr_integrate(die, name, &a) == NULL || dwarf_formudata(&a, &w) != 0 || w > INT32_MAX)
        return 0;
    return (int)w;
}

static int decl_line(Dwarf_Die *die)
{
    int line = 0;
    return dwarf_decl_line(die, &line) == 0 ? line : 0;
}

static void push_frame(zn_pprof_sym_t *out, const char *func, const char *file, int line, int start_line)
{
    if (out->nframes < ZN_PPROF_INLINE_MAX)
        out->frames[out->nframes++] = (zn_pprof_frame_t){intern(func), intern(file), line, start_line};
}

/* Walks DWARF scopes innermost first: each inlined subroutine is a frame whose caller line is
 * its DW_AT_call_file/line; the enclosing subprogram ends the chain. Returns false when there is
 * no DWARF for pc, leaving out untouched. */
static bool add_inline_chain(Dwfl_Module *mod, uintptr_t pc, const char *file, int line, const char *elf_name,
                             zn_pprof_sym_t *out)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, pc, &bias), *scopes = NULL, inner;
    int n = cu != NULL ? dwarf_getscopes(cu, pc - bias, &scopes) : -1;
    if (n <= 0) {
        free(scopes);
        return false;
    }
    /* past an inlined instance dwarf_getscopes follows the abstract definition; the callers
     * are the DIEs enclosing the innermost scope in the tree, as eu-addr2line -i walks them */
    inner = scopes[0];
    free(scopes);
    scopes = NULL;
    n = dwarf_getscopes_die(&inner, &scopes);
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    bool done = false;
    if (n > 0 && dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
        files = NULL;
    for (int i = 0; i < n && !done; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_inlined_subroutine) {
            push_frame(out, dwarf_diename(&scopes[i]), file, line, decl_line(&scopes[i]));
            size_t fi = (size_t)attr_int(&scopes[i], DW_AT_call_file);
            const char *cf = files != NULL && fi < nfiles ? dwarf_filesrc(files, fi, NULL, NULL) : NULL;
            file = cf != NULL ? cf : "";
            line = attr_int(&scopes[i], DW_AT_call_line);
        } else if (tag == DW_TAG_subprogram) {
            const char *name = dwarf_diename(&scopes[i]);
            push_frame(out, name != NULL ? name : elf_name, file, line, decl_line(&scopes[i]));
            done = true;
        }
    }
    free(scopes);
    return done;
}

/* True when symbol a (binding ba) is a better name than b (binding bb); see the top comment. */
static bool better_alias(const char *a, int ba, const char *b, int bb)
{
    bool la = ba == STB_LOCAL, lb = bb == STB_LOCAL;
    if (la != lb)
        return lb;
    bool ua = a[0] == '_', ub = b[0] == '_';
    if (ua != ub)
        return ub;
    size_t na = strcspn(a, "@"), nb = strcspn(b, "@");
    if (na != nb)
        return na < nb;
    int c = strncmp(a, b, na);
    return c < 0;
}

/* Among the function symbols of mod at address start, the one to show; fallback (libdwfl's
 * choice, interned) when the symbol table cannot be read. Called with S.lock held. */
static const char *preferred_alias(Dwfl_Module *mod, uintptr_t start, const char *fallback)
{
    struct pc_key k = {start};
    uint64_t h = zn_hash(&start, sizeof(start), 2);
    uintptr_t i;
    if (zn_htab_find(&S.alias_index, h, alias_eq, &k, &i))
        return S.aliases[i].name;

    const char *best = NULL;
    int best_bind = STB_LOCAL;
    int n = dwfl_module_getsymtab(mod);
    for (int j = 1; j < n; j++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *name = dwfl_module_getsym_info(mod, j, &sym, &addr, NULL, NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info);
        if (name == NULL || name[0] == '\0' || addr != start || (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        int bind = GELF_ST_BIND(sym.st_info);
        if (best == NULL || better_alias(name, bind, best, best_bind)) {
            best = name;
            best_bind = bind;
        }
    }
    const char *name = best != NULL ? intern_symbol(best) : fallback;
    if (S.naliases == S.cap_aliases) {
        S.cap_aliases = S.cap_aliases == 0 ? 256 : S.cap_aliases * 2;
        S.aliases = zn_realloc(S.aliases, S.cap_aliases * sizeof(*S.aliases));
    }
    S.aliases[S.naliases] = (struct alias){start, name};
    zn_htab_insert(&S.alias_index, h, (uint32_t)S.naliases++);
    return name;
}

/* Whether name is one of the symbols at start (a DWARF subprogram named by an alias). */
static bool is_alias_of(Dwfl_Module *mod, uintptr_t start, const char *name)
{
    int n = dwfl_module_getsymtab(mod);
    for (int j = 1; j < n; j++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *s = dwfl_module_getsym_info(mod, j, &sym, &addr, NULL, NULL, NULL);
        if (s != NULL && addr == start && strncmp(s, name, strcspn(s, "@")) == 0 && name[strcspn(s, "@")] == '\0')
            return true;
    }
    return false;
}

static void symbolize(uintptr_t pc, zn_pprof_sym_t *out)
{
    *out = (zn_pprof_sym_t){.pc = pc, .mapping = find_mapping(pc)};
    Dwfl_Module *mod = S.dwfl != NULL ? dwfl_addrmodule(S.dwfl, pc) : NULL;
    if (mod == NULL)
        return;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
    if (name != NULL)
        out->func_start = pc - off;
    Dwfl_Line *row = dwfl_module_getsrc(mod, pc);
    int line = 0;
    const char *file = row != NULL ? dwfl_lineinfo(row, NULL, &line, NULL, NULL, NULL) : NULL;
    const char *elf_name = intern_symbol(name);
    if (name != NULL)
        elf_name = preferred_alias(mod, out->func_start, elf_name);
    if (!add_inline_chain(mod, pc, file, line, elf_name, out) && (name != NULL || file != NULL))
        push_frame(out, elf_name, file, line, 0);
    /* glibc's DWARF names read "__libc_read": the outermost frame takes the public alias too */
    if (out->nframes > 0 && name != NULL) {
        zn_pprof_frame_t *f = &out->frames[out->nframes - 1];
        if (f->func != elf_name && is_alias_of(mod, out->func_start, f->func))
            f->func = elf_name;
    }
}

static bool cache_eq(void *ctx, uintptr_t i)
{
    return S.cache[i].pc == ((struct pc_key *)ctx)->pc;
}

void zn_pprof_sym_lookup(uintptr_t pc, zn_pprof_sym_t *out)
{
    struct pc_key k = {pc};
    uint64_t h = zn_hash(&pc, sizeof(pc), 1);

    zn_mutex_lock(&S.lock);
    uintptr_t i;
    if (zn_htab_find(&S.cache_index, h, cache_eq, &k, &i)) {
        *out = S.cache[i];
        goto done;
    }
    if (S.dwfl == NULL || (find_mapping(pc) < 0 && zn_now_mono_ns() - S.refreshed_ns > 1000000000u))
        refresh();
    symbolize(pc, out);
    if (out->mapping < 0 || S.ncache >= CACHE_MAX)
        goto done; /* do not let stray addresses (symbol endpoint) fill the cache */
    if (S.ncache == S.cap_cache) {
        S.cap_cache = S.cap_cache == 0 ? 1024 : S.cap_cache * 2;
        S.cache = zn_realloc(S.cache, S.cap_cache * sizeof(*S.cache));
    }
    S.cache[S.ncache] = *out;
    zn_htab_insert(&S.cache_index, h, (uint32_t)S.ncache++);
done:
    zn_mutex_unlock(&S.lock);
}
