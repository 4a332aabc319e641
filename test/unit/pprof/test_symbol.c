/* Unit tests for pprof/symbol.c: our own functions by name, file and line, inline chains with
 * the caller's call-site line, mappings with build ids, unknown addresses, and the symbol
 * endpoint's text (Go's "num_symbols: 1" / "0xADDR name" format). */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pprof/internal.h"

static int inl_line, call_line;

__attribute__((noipa)) uintptr_t zn_test_return_pc(void)
{
    return (uintptr_t)__builtin_return_address(0) - 1;
}

static inline __attribute__((always_inline)) uintptr_t zn_test_inlined(void)
{
    inl_line = __LINE__ + 1;
    uintptr_t pc = zn_test_return_pc();
    __asm__ volatile("" ::: "memory"); /* no tail call: the return address must be in here */
    return pc;
}

__attribute__((noipa)) uintptr_t zn_test_outer(void)
{
    call_line = __LINE__ + 1;
    uintptr_t pc = zn_test_inlined();
    __asm__ volatile("" ::: "memory");
    return pc;
}

static void test_inline_chain(void **state)
{
    zn_pprof_sym_t sym;
    uintptr_t pc = zn_test_outer();
    zn_pprof_sym_lookup(pc, &sym);
    assert_int_equal(sym.nframes, 2);
    assert_string_equal(sym.frames[0].func, "zn_test_inlined");
    assert_int_equal(sym.frames[0].line, inl_line);
    assert_non_null(strstr(sym.frames[0].file, "test_symbol.c"));
    assert_string_equal(sym.frames[1].func, "zn_test_outer");
    assert_int_equal(sym.frames[1].line, call_line);
    assert_non_null(strstr(sym.frames[1].file, "test_symbol.c"));
    assert_true(sym.frames[1].start_line > 0 && sym.frames[1].start_line < call_line);
    assert_int_equal(sym.func_start, (uintptr_t)zn_test_outer);
    assert_true(sym.mapping >= 0);
    const zn_pprof_mapping_t *m = zn_pprof_sym_mapping(sym.mapping);
    assert_true(m->is_main);
    assert_true(m->start <= pc && pc < m->limit);
}

static void test_library_function(void **state)
{
    zn_pprof_sym_t sym;
    /* a libc function (one ASan does not intercept): named from its symbol table, without @VERSION */
    zn_pprof_sym_lookup((uintptr_t)&getpid + 1, &sym);
    assert_true(sym.nframes >= 1);
    assert_null(strchr(sym.frames[sym.nframes - 1].func, '@'));
    assert_true(strstr(sym.frames[sym.nframes - 1].func, "getpid") != NULL);
    const zn_pprof_mapping_t *m = zn_pprof_sym_mapping(sym.mapping);
    assert_non_null(m);
    assert_false(m->is_main);
    assert_non_null(strstr(m->file, "libc"));
    assert_true(strlen(m->build_id) >= 16);
}

/* libc functions with several names at one address (pwrite: __libc_pwrite, __pwrite64,
 * pwrite64, pwrite; read: __libc_read, __read, read with debug symbols) are shown by their
 * public name, as perf and gdb show them. Looked up through libc's own handle, so that ASan's
 * interceptors in the executable do not answer. */
static void test_libc_alias(void **state)
{
    static const char *const names[] = {"pwrite", "read", "writev", "getpid"};
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(libc);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        zn_pprof_sym_t sym;
        void *fn = dlsym(libc, names[i]);
        assert_non_null(fn);
        zn_pprof_sym_lookup((uintptr_t)fn + 1, &sym);
        assert_true(sym.nframes >= 1);
        assert_string_equal(sym.frames[sym.nframes - 1].func, names[i]);
        assert_int_equal(sym.func_start, (uintptr_t)fn);
    }
    /* the premise: pwrite really has a global alias with an underscore at its address */
    void *priv = dlsym(libc, "__libc_pwrite");
    assert_ptr_equal(priv, dlsym(libc, "pwrite"));
    dlclose(libc);
}

static void test_mappings_main_first(void **state)
{
    assert_true(zn_pprof_sym_mapping_count() >= 2);
    assert_true(zn_pprof_sym_mapping(0)->is_main);
    assert_null(zn_pprof_sym_mapping(zn_pprof_sym_mapping_count()));
}

static void test_unknown(void **state)
{
    zn_pprof_sym_t sym;
    zn_pprof_sym_lookup(8, &sym);
    assert_int_equal(sym.mapping, -1);
    assert_int_equal(sym.nframes, 0);
}

static void test_symbol_text(void **state)
{
    char words[128];
    zn_buf_t out;
    snprintf(words, sizeof(words), "%#lx+0x8+junk+%lu", (unsigned long)zn_test_outer + 2, (unsigned long)zn_test_return_pc);
    zn_buf_init(&out, 1 << 16);
    assert_int_equal(zn_pprof_symbol_write(zn_slice(words, strlen(words)), &out), ZN_OK);
    char want[256];
    snprintf(want, sizeof(want), "num_symbols: 1\n%#lx zn_test_outer\n%#lx zn_test_return_pc\n",
             (unsigned long)zn_test_outer + 2, (unsigned long)zn_test_return_pc);
    assert_string_equal(out.p, want);
    zn_buf_release(&out);

    zn_buf_init(&out, 1 << 16);
    assert_int_equal(zn_pprof_symbol_write(zn_slice("", 0), &out), ZN_OK);
    assert_string_equal(out.p, "num_symbols: 1\n");
    zn_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_chain),        cmocka_unit_test(test_library_function), cmocka_unit_test(test_libc_alias),
        cmocka_unit_test(test_mappings_main_first), cmocka_unit_test(test_unknown),          cmocka_unit_test(test_symbol_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
