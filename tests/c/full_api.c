/*
 * Every function of smfjit.h from C: a configured loader loads two
 * modules (and a third that imports the second's memory), calls an
 * instantiation made on the miss, asks which symbol and module addresses
 * belong to, reads the statistics, reloads and unloads, and provokes each
 * error code. Each check prints one line; a failed check prints "FAIL" and
 * the program exits 1 at the end.
 *
 * Usage: full_api COLLECTIONS.smf HEAP.smf HEAPUSER.smf BAD_MAGIC.smf
 *                 RELOC_OVERFLOW.smf
 */
#include "smfjit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int failures = 0;

static void check(int ok, const char *what) {
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) {
        printf("  last error %d: %s\n", smfjit_last_error_code(), smfjit_last_error());
        failures++;
    }
}

/* A call that must fail with `code`, and leave that code as the last. */
static void expect(int got, int code, const char *what) {
    char line[256];
    snprintf(line, sizeof line, "%s -> %d", what, code);
    check(got == code && smfjit_last_error_code() == code && smfjit_last_error()[0] != '\0',
          line);
}

static int ends_with(const char *text, const char *end) {
    size_t n = strlen(text), m = strlen(end);
    return n >= m && strcmp(text + n - m, end) == 0;
}

typedef double (*sum_f64)(const double *, long);

/* The process's virtual size in bytes, from /proc/self/statm. */
static unsigned long long virtual_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%llu", &pages) != 1) pages = 0;
    fclose(f);
    return pages * 4096ull;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s COLLECTIONS HEAP HEAPUSER BAD_MAGIC RELOC_OVERFLOW\n", argv[0]);
        return 2;
    }
    const char *collections = argv[1], *heap = argv[2], *heapuser = argv[3];
    const char *bad_magic = argv[4], *overflow = argv[5];

    /* Version: the library and the header agree. */
    printf("version %s (%u)\n", smfjit_version(), smfjit_version_number());
    check(strcmp(smfjit_version(), SMFJIT_VERSION_STRING) == 0 &&
              smfjit_version_number() == SMFJIT_VERSION_NUMBER,
          "library version matches the header");

    /* Configuration, with each setter's refusal. */
    smfjit_config *config = smfjit_config_new();
    check(config != NULL, "config made");
    check(smfjit_config_set_binding(config, SMFJIT_BIND_NOW) == 0 &&
              smfjit_config_set_tier(config, SMFJIT_TIER_COMPILED) == 0 &&
              smfjit_config_set_tier_thresholds(config, 2, 100) == 0 &&
              smfjit_config_set_tier_background(config, 0) == 0 &&
              smfjit_config_set_open_world(config, 1) == 0 &&
              smfjit_config_set_instantiation(config, 1) == 0 &&
              smfjit_config_set_debug(config, 0) == 0 &&
              smfjit_config_set_cache_limits(config, 16, 64u << 20) == 0 &&
              smfjit_config_set_max_depth(config, 32) == 0 &&
              smfjit_config_clear_native_libraries(config) == 0 &&
              smfjit_config_add_native_library(config, "libc.so.6") == 0 &&
              smfjit_config_add_native_library(config, "libm.so.6") == 0,
          "config set");
    expect(smfjit_config_set_binding(config, 7), SMFJIT_EINVAL, "binding 7");
    expect(smfjit_config_set_tier(config, 3), SMFJIT_EINVAL, "tier 3");
    expect(smfjit_config_set_tier_thresholds(config, 0, 1), SMFJIT_EINVAL, "zero calls");
    expect(smfjit_config_set_debug(config, 8), SMFJIT_EINVAL, "debug flag 8");
    expect(smfjit_config_set_cache_limits(config, 0, 1), SMFJIT_EINVAL, "cache of 0 files");
    expect(smfjit_config_set_max_depth(config, 0), SMFJIT_EINVAL, "depth 0");
    expect(smfjit_config_add_native_library(config, NULL), SMFJIT_EINVAL, "NULL library");
    expect(smfjit_config_set_tier(NULL, 0), SMFJIT_EINVAL, "NULL config");

    smfjit_loader *loader = smfjit_loader_new_with_config(config);
    check(loader != NULL, "loader made from the config");
    smfjit_config_free(config);
    smfjit_config_free(config);
    check(smfjit_last_error_code() == SMFJIT_EINVAL, "config freed twice -> -1");
    expect(smfjit_config_set_open_world(config, 0), SMFJIT_EINVAL, "freed config");
    check(smfjit_loader_new_with_config(config) == NULL &&
              smfjit_last_error_code() == SMFJIT_EINVAL,
          "loader from a freed config -> -1");

    /* Two modules, and one importing the second's memory and table. */
    smfjit_module c = 0, h = 0, u = 0, found = 0;
    check(smfjit_load_module(loader, collections, &c) == 0 && c != 0, "collections loaded");
    check(smfjit_load_module(loader, heap, &h) == 0 && h != 0 && h != c, "heap loaded");
    check(smfjit_load_module(loader, heapuser, &u) == 0 && u != 0, "heapuser loaded");
    check(smfjit_module_find(loader, heap, &found) == 0 && found == h, "heap found by path");

    /* An instantiation made on the miss, and what its address belongs to. */
    sum_f64 sum = (sum_f64)smfjit_resolve(loader, "sum$f64");
    double xs[3] = {1.5, 2.25, 3.0};
    check(sum != NULL && sum(xs, 3) == 6.75, "sum$f64 compiled on the miss");

    struct smfjit_addr_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    check(smfjit_addr_info(loader, (const void *)sum, &info) == 0 &&
              info.size == sizeof info && info.owner == SMFJIT_ADDR_INSTANCE &&
              strcmp(info.symbol, "sum$f64") == 0 && info.symbol_address == (const void *)sum &&
              info.module == c && ends_with(info.module_path, "collections.smf"),
          "addr_info of the JIT entry");
    printf("  %s from %s\n", info.symbol, info.module_path);
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    check(smfjit_addr_info(loader, (const char *)sum + 5, &info) == 0 &&
              info.owner == SMFJIT_ADDR_INSTANCE && strcmp(info.symbol, "sum$f64") == 0 &&
              info.symbol_address == (const void *)sum,
          "addr_info inside the JIT function");
    void *precompiled = smfjit_resolve(loader, "sum$i32");
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    check(precompiled != NULL && smfjit_addr_info(loader, precompiled, &info) == 0 &&
              info.owner == SMFJIT_ADDR_MODULE && strcmp(info.symbol, "sum$i32") == 0 &&
              info.symbol_address == precompiled && info.module == c,
          "addr_info of a module's export");
    /* A caller built against a smaller struct gets only what fits. */
    struct smfjit_addr_info small;
    memset(&small, 0, sizeof small);
    small.size = sizeof(size_t) + sizeof(int);
    check(smfjit_addr_info(loader, (const void *)sum, &small) == 0 &&
              small.size == sizeof(size_t) + sizeof(int) &&
              small.owner == SMFJIT_ADDR_INSTANCE && small.symbol == NULL,
          "addr_info into a smaller struct");
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    expect(smfjit_addr_info(loader, (const void *)&main, &info), SMFJIT_ENOTFOUND,
           "addr_info of main");
    expect(smfjit_addr_info(loader, (const void *)sum, NULL), SMFJIT_EINVAL, "NULL info");

    /* Statistics, whole and into an older, smaller struct. */
    struct smfjit_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    check(smfjit_stats(loader, &stats) == 0 && stats.size == sizeof stats &&
              stats.modules == 3 && stats.shared == 2 && stats.instantiations >= 1 &&
              stats.instances >= 1 && stats.templates_decoded >= 1 &&
              stats.compiled_code_bytes > 0 && stats.code_bytes > 0 && stats.publications > 0,
          "stats");
    printf("  modules %llu, instantiations %llu, templates decoded %llu\n",
           (unsigned long long)stats.modules, (unsigned long long)stats.instantiations,
           (unsigned long long)stats.templates_decoded);
    struct smfjit_stats older;
    memset(&older, 0xab, sizeof older);
    older.size = sizeof(size_t) + sizeof(uint64_t);
    check(smfjit_stats(loader, &older) == 0 && older.size == sizeof(size_t) + sizeof(uint64_t) &&
              older.modules == 3 && older.exports == 0xababababababababull,
          "stats into a smaller struct");
    older.size = sizeof(size_t);
    expect(smfjit_stats(loader, &older), SMFJIT_EINVAL, "stats of size 8");

    /* Reload: a new handle, the old one gone, the name made again. */
    smfjit_module c2 = 0;
    check(smfjit_reload(loader, collections, &c2) == 0 && c2 != 0 && c2 != c,
          "collections reloaded by path");
    expect(smfjit_reload_module(loader, c, NULL), SMFJIT_ENOMODULE, "reload of the old handle");
    sum_f64 again = (sum_f64)smfjit_resolve(loader, "sum$f64");
    check(again != NULL && again(xs, 3) == 6.75, "sum$f64 made again after the reload");
    check(sum(xs, 3) == 6.75, "the old sum$f64 still runs until reclaimed");
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    check(smfjit_addr_info(loader, (const void *)again, &info) == 0 && info.module == c2,
          "addr_info names the new version");
    check(smfjit_reload_module(loader, c2, &c) == 0 && c != c2, "reloaded again by handle");
    check(smfjit_reclaim(loader) >= 1, "replaced versions reclaimed");

    /* Errors of loading, each provoked. */
    expect(smfjit_load(loader, NULL), SMFJIT_EINVAL, "load of NULL");
    expect(smfjit_load(NULL, collections), SMFJIT_EINVAL, "load into NULL");
    expect(smfjit_load(loader, "\xff.smf"), SMFJIT_EINVAL, "load of a non-UTF-8 path");
    expect(smfjit_load(loader, "/nonexistent/none.smf"), SMFJIT_EIO, "load of a missing file");
    expect(smfjit_load(loader, bad_magic), SMFJIT_EFORMAT, "load of a bad magic");
    expect(smfjit_load(loader, heap), SMFJIT_EUNSUPPORTED, "heap defined twice");
    expect(smfjit_load(loader, overflow), SMFJIT_ERELOC, "relocation overflow");
    check(smfjit_resolve(loader, "no_such_template$i64") == NULL &&
              smfjit_last_error_code() == SMFJIT_EUNDEFINED,
          "undefined name -> -5");
    check(smfjit_resolve(loader, "sum$bool") == NULL &&
              smfjit_last_error_code() == SMFJIT_EINSTANTIATE,
          "failing instantiation -> -7");
    check(smfjit_resolve(loader, NULL) == NULL && smfjit_last_error_code() == SMFJIT_EINVAL,
          "resolve of NULL -> -1");

    /* Unload: refused while imported, then in order. */
    expect(smfjit_unload(loader, heap), SMFJIT_EINUSE, "unload of an imported heap");
    check(smfjit_unload_module(loader, u) == 0, "heapuser unloaded by handle");
    check(smfjit_unload(loader, heap) == 0, "heap unloaded by path");
    expect(smfjit_unload(loader, heap), SMFJIT_ENOMODULE, "unload of heap again");
    expect(smfjit_unload_module(loader, h), SMFJIT_ENOMODULE, "unload of a gone handle");
    expect(smfjit_module_find(loader, heap, &found), SMFJIT_ENOMODULE, "find of heap");
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    check(smfjit_stats(loader, &stats) == 0 && stats.modules == 1, "one module left");

    /* A module whose import nothing defines, in a loader of its own. */
    smfjit_loader *other = smfjit_loader_new();
    check(other != NULL, "second loader");
    expect(smfjit_load(other, heapuser), SMFJIT_EUNDEFINED, "heapuser without heap");

    /* No address space left for heap's memory reservation. */
    struct rlimit saved;
    getrlimit(RLIMIT_AS, &saved);
    struct rlimit tight = saved;
    tight.rlim_cur = virtual_size() + (256u << 10);
    if (setrlimit(RLIMIT_AS, &tight) == 0) {
        int got = smfjit_load(other, heap);
        int code = smfjit_last_error_code();
        setrlimit(RLIMIT_AS, &saved);
        check(got == SMFJIT_ENOMEM && code == SMFJIT_ENOMEM, "memory reservation -> -8");
    } else {
        check(0, "memory reservation -> -8 (setrlimit failed)");
    }
    smfjit_loader_free(other);

    /* Configuration from a bad environment. */
    setenv("SMFJIT_TIER", "fast", 1);
    check(smfjit_config_from_env() == NULL && smfjit_last_error_code() == SMFJIT_ECONFIG,
          "config from a bad SMFJIT_TIER -> -10");
    check(smfjit_loader_new() == NULL && smfjit_last_error_code() == SMFJIT_ECONFIG,
          "loader from a bad SMFJIT_TIER -> -10");
    unsetenv("SMFJIT_TIER");

    /* A freed loader is reported, not followed. */
    smfjit_loader_free(loader);
    expect(smfjit_load(loader, collections), SMFJIT_EINVAL, "load into a freed loader");
    check(smfjit_resolve(loader, "sum$f64") == NULL && smfjit_last_error_code() == SMFJIT_EINVAL,
          "resolve in a freed loader -> -1");
    smfjit_loader_free(loader);
    check(smfjit_last_error_code() == SMFJIT_EINVAL, "loader freed twice -> -1");
    smfjit_loader_free(NULL);

    printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
    return failures == 0 ? 0 : 1;
}
