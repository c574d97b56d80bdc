/*
 * smfjit.h - the C interface of the smfjit loader (libsmfjit.so.0).
 *
 * A loader maps SMF modules, places their code in write-xor-execute memory,
 * binds their imports and resolves names: first the exports of loaded
 * modules, then instantiations made earlier, then the template instantiator,
 * which compiles what no module contains ("sum$f64") on the miss.
 *
 * Build: cc prog.c $(pkg-config --cflags --libs smfjit)
 *
 * Errors: functions returning int return 0 (SMFJIT_OK) on success or a
 * negative smfjit_error; functions returning a pointer return NULL. Either
 * way smfjit_last_error() then describes the failure and
 * smfjit_last_error_code() gives its code. A NULL where an object is
 * expected, a freed handle, text that is not UTF-8 or a value out of range
 * is SMFJIT_EINVAL, never a crash. (A pointer that never came from this
 * library is undefined behaviour, as everywhere in C.)
 *
 * Threads: a loader may be used from any number of threads at once, except
 * that smfjit_loader_free must not run alongside any other call on the same
 * loader. A configuration (smfjit_config) belongs to one thread at a time.
 * The last error is per thread.
 *
 * Ownership: the caller owns what a *_new function returns and gives it
 * back with the matching *_free. Strings the library returns belong to the
 * library; each function says how long they stay valid. Strings passed in
 * are copied when kept.
 */
#ifndef SMFJIT_H
#define SMFJIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; smfjit_version() is the library's. */
#define SMFJIT_VERSION_MAJOR 0
#define SMFJIT_VERSION_MINOR 1
#define SMFJIT_VERSION_PATCH 0
#define SMFJIT_VERSION_STRING "0.1.0"
#define SMFJIT_VERSION_NUMBER \
    (SMFJIT_VERSION_MAJOR * 10000 + SMFJIT_VERSION_MINOR * 100 + SMFJIT_VERSION_PATCH)

/* The library's version, "MAJOR.MINOR.PATCH" (a static string), and as
 * MAJOR * 10000 + MINOR * 100 + PATCH. Thread-safe. */
const char *smfjit_version(void);
unsigned smfjit_version_number(void);

/* Codes of failure. Functions return them as int. */
typedef enum smfjit_error {
    SMFJIT_OK = 0,
    SMFJIT_EINVAL = -1,      /* NULL, a freed handle, not UTF-8, out of range */
    SMFJIT_EIO = -2,         /* the file cannot be opened, read or mapped, or
                                changed while read */
    SMFJIT_EFORMAT = -3,     /* not a valid SMF module (or its note is not
                                valid), or built for another platform */
    SMFJIT_EUNSUPPORTED = -4,/* a layout the loader does not support, or a
                                shared memory or table that does not fit what
                                is loaded (defined twice, another kind,
                                another signature) */
    SMFJIT_EUNDEFINED = -5,  /* a symbol, memory or table no loaded module
                                defines or instantiates */
    SMFJIT_ERELOC = -6,      /* a relocation's result does not fit its field */
    SMFJIT_EINSTANTIATE = -7,/* an instantiation failed, nested too deeply,
                                or formed a cycle */
    SMFJIT_ENOMEM = -8,      /* executable, data or shared memory could not
                                be obtained */
    SMFJIT_ENOMODULE = -9,   /* no module is loaded under that handle or
                                path */
    SMFJIT_ECONFIG = -10,    /* a configuration value (an environment
                                variable) is not valid */
    SMFJIT_EINUSE = -11,     /* a module cannot be unloaded while another
                                imports its shared memory or table */
    SMFJIT_ENOTFOUND = -12   /* smfjit_addr_info: nothing of the loader is
                                at that address */
} smfjit_error;

/* The calling thread's last error message ("" if none), valid until the
 * thread's next call into the library; and its code (0 if none). A success
 * does not clear them. */
const char *smfjit_last_error(void);
int smfjit_last_error_code(void);

/* ---- Configuration ---------------------------------------------------- */

/* An opaque configuration for smfjit_loader_new_with_config. */
typedef struct smfjit_config smfjit_config;

#define SMFJIT_BIND_NOW 0  /* every import resolved (and instantiated) at load */
#define SMFJIT_BIND_LAZY 1 /* each import resolved on its first call */

#define SMFJIT_TIER_COMPILED 0    /* compiled on the miss (the default) */
#define SMFJIT_TIER_INTERPRETED 1 /* run by the interpreter behind a real
                                     function pointer, never compiled */
#define SMFJIT_TIER_AUTO 2        /* interpreted first; compiled once hot,
                                     the address already returned reaching
                                     the compiled code from then on */

#define SMFJIT_DEBUG_GDB 1u      /* register code with GDB's JIT interface */
#define SMFJIT_DEBUG_PERF_MAP 2u /* list functions in /tmp/perf-PID.map */
#define SMFJIT_DEBUG_JITDUMP 4u  /* write jit-PID.dump for perf inject --jit */

/* A configuration with the defaults, reading nothing from the environment:
 * imports bound at load, instantiations compiled on their miss, open world,
 * instantiation on, the default cache limits (256 files, 1 GiB), native
 * imports searched in libc.so.6 then libm.so.6, and debugger and profiler
 * support as SMFJIT_DEBUG, SMFJIT_PERF_MAP and SMFJIT_JITDUMP say until
 * smfjit_config_set_debug decides. Never NULL (the library, like any Rust
 * code, aborts the process if memory for it runs out). */
smfjit_config *smfjit_config_new(void);

/* The same with the tier variables of the environment applied as
 * smfjit_loader_new reads them; NULL (SMFJIT_ECONFIG) for an invalid one. */
smfjit_config *smfjit_config_from_env(void);

/* Frees a configuration; NULL is ignored, a second free is reported as
 * SMFJIT_EINVAL. Loaders made from it are unaffected. */
void smfjit_config_free(smfjit_config *config);

/* Setters: 0, or SMFJIT_EINVAL with nothing changed. */
int smfjit_config_set_binding(smfjit_config *config, int binding);
int smfjit_config_set_tier(smfjit_config *config, int tier);
/* auto tier: calls interpreted before the next one compiles, and loop
 * back-edges in one interpreted call after which it continues compiled;
 * each >= 1 (defaults 30 and 750). */
int smfjit_config_set_tier_thresholds(smfjit_config *config, uint32_t calls,
                                      uint32_t back_edges);
/* auto tier: nonzero compiles on a thread of its own while the interpreter
 * keeps serving; 0 (default) compiles in the call that crossed the
 * threshold. */
int smfjit_config_set_tier_background(smfjit_config *config, int background);
/* Nonzero (default): instantiate any well-formed name whose template a
 * loaded module offers; 0: only names the modules' notes list. */
int smfjit_config_set_open_world(smfjit_config *config, int open);
/* Nonzero (default): a miss instantiates; 0: names no module exports are
 * undefined. */
int smfjit_config_set_instantiation(smfjit_config *config, int enabled);
/* Exactly the SMFJIT_DEBUG_* features in flags are on (0: none), whatever
 * the environment says. */
int smfjit_config_set_debug(smfjit_config *config, unsigned flags);
/* The SMF cache keeps at most max_files files (>= 1) and max_bytes bytes
 * before evicting the least recently used. */
int smfjit_config_set_cache_limits(smfjit_config *config, size_t max_files,
                                   uint64_t max_bytes);
/* Instantiations nest at most this deep (>= 1). */
int smfjit_config_set_max_depth(smfjit_config *config, size_t depth);
/* The native libraries searched for imports no module defines: cleared,
 * then appended in search order (a name dlopen finds, or a path). */
int smfjit_config_clear_native_libraries(smfjit_config *config);
int smfjit_config_add_native_library(smfjit_config *config, const char *library);

/* ---- Loaders ---------------------------------------------------------- */

/* An opaque loader. */
typedef struct smfjit_loader smfjit_loader;

/* A loader made as config says (config is read, not taken: it may make
 * more loaders and is freed by its owner), with the JIT instantiator
 * installed. NULL on failure (a NULL or freed config, a native library
 * that does not open, memory). */
smfjit_loader *smfjit_loader_new_with_config(const smfjit_config *config);

/* Creates a loader with the default configuration: imports bound at load,
 * native imports searched in libc.so.6 then libm.so.6, and the JIT
 * instantiator installed, so resolving a generic instantiation no module
 * contains (for example "sum$f64") instantiates the template a loaded
 * module offers, compiles it and returns its address. Returns NULL on
 * failure.
 *
 * Where instantiations run is read from the environment when the loader is
 * made (the returned address is a real function either way):
 *   SMFJIT_TIER=compiled     compiled on the miss (the default)
 *   SMFJIT_TIER=interpreted  run by the interpreter behind a thunk, never
 *                            compiled
 *   SMFJIT_TIER=auto         interpreted first; compiled once hot, and the
 *                            address already returned reaches the compiled
 *                            code from then on
 *   SMFJIT_TIER_CALLS=N      auto: calls interpreted before the next one
 *                            compiles (N >= 1)
 *   SMFJIT_TIER_BACKEDGES=N  auto: loop back-edges in one interpreted call
 *                            after which it continues compiled (N >= 1)
 *   SMFJIT_TIER_BACKGROUND=1 auto: compile on a thread of its own (0: in
 *                            the call that crossed the threshold)
 *   SMFJIT_CODE_MEMORY=file  generated code written into a memory file whose
 *                            only mapping is read-execute (the default);
 *                            =mprotect: private pages made read-execute;
 *                            =dual: a read-write and a read-execute view
 * An empty variable counts as unset. An invalid value makes this return
 * NULL with SMFJIT_ECONFIG, and smfjit_last_error() names the variable and
 * what is wrong. */
smfjit_loader *smfjit_loader_new(void);

/* Like smfjit_loader_new (the environment included), with the binding of
 * the modules it loads. Returns NULL for any other binding value. */
smfjit_loader *smfjit_loader_new_with_binding(int binding);

/* Frees a loader and every module it loaded. NULL is ignored; a second
 * free is reported as SMFJIT_EINVAL (the handle's few bytes stay allocated,
 * tagged as freed, so that a use after the free is an error code). No code
 * of its modules may run during or after the call, and no other call on
 * the loader may run during it. */
void smfjit_loader_free(smfjit_loader *loader);

/* ---- Modules ---------------------------------------------------------- */

/* A loaded module's handle: unique for the life of its loader, never 0. */
typedef uint64_t smfjit_module;

/* Loads the SMF module at path, binding its imports as the loader says.
 * Returns 0, or a negative code. smfjit_load_module also writes the new
 * module's handle to *module (unless module is NULL). */
int smfjit_load(smfjit_loader *loader, const char *path);
int smfjit_load_module(smfjit_loader *loader, const char *path, smfjit_module *module);

/* The handle of the module most recently loaded from path (compared after
 * resolving links and relative parts): 0, or SMFJIT_ENOMODULE. */
int smfjit_module_find(smfjit_loader *loader, const char *path, smfjit_module *module);

/* Reloads a module (by the path it was loaded from, or by handle) from its
 * file as it is now: the new version replaces it at once, names resolve to
 * the new code, instantiations made from its templates are made again, and
 * the old handle names nothing afterwards; the new one is written to
 * *new_module unless new_module is NULL. Addresses handed out for the old
 * version stay callable until smfjit_reclaim. 0, or a negative code (the
 * old version then stays loaded). */
int smfjit_reload(smfjit_loader *loader, const char *path, smfjit_module *new_module);
int smfjit_reload_module(smfjit_loader *loader, smfjit_module module,
                         smfjit_module *new_module);

/* Frees the versions reloads replaced; no thread may still run their code.
 * Returns how many were freed, or a negative code. */
int smfjit_reclaim(smfjit_loader *loader);

/* Unloads a module (by path or handle): its exports go at once; its code
 * stays mapped while modules that bound to it stay loaded. 0,
 * SMFJIT_ENOMODULE, or SMFJIT_EINUSE while another module imports its
 * shared memory or table. */
int smfjit_unload(smfjit_loader *loader, const char *path);
int smfjit_unload_module(smfjit_loader *loader, smfjit_module module);

/* ---- Names and addresses ---------------------------------------------- */

/* The address of symbol, or NULL (smfjit_last_error_code() says why:
 * SMFJIT_EUNDEFINED, SMFJIT_EINSTANTIATE, ...). The address stays valid
 * until its module is unloaded or replaced, or the loader is freed. */
void *smfjit_resolve(smfjit_loader *loader, const char *symbol);

/* What smfjit_addr_info fills. Set size to sizeof(struct smfjit_addr_info)
 * before the call; fields are only ever appended, and the library fills
 * those that fit and sets size to the bytes it filled. */
struct smfjit_addr_info {
    size_t size;
    int owner;                  /* SMFJIT_ADDR_* */
    const char *symbol;         /* a module's nearest export at or below the
                                   address (NULL below the first), or the
                                   instantiation's mangled name */
    const void *symbol_address; /* where symbol starts, or NULL */
    const char *module_path;    /* the module holding the address, or the
                                   module whose template generated code came
                                   from when known; NULL if none */
    smfjit_module module;       /* that module's handle, or 0 */
};

#define SMFJIT_ADDR_MODULE 1    /* a loaded module's code or data */
#define SMFJIT_ADDR_INSTANCE 2  /* an instantiation compiled on its miss, or a
                                   tiered instantiation's entry stub */
#define SMFJIT_ADDR_TIER_CODE 3 /* a tiered instantiation's code compiled once
                                   hot (its body or a loop entry) */

/* The dladdr of this loader, generated code included: 0,
 * SMFJIT_ENOTFOUND when the loader holds nothing at address (padding
 * between functions included), or SMFJIT_EINVAL. The strings belong to the
 * library and stay valid until this thread's next smfjit_addr_info. A
 * linear scan, for debugging and error reports, not hot paths. */
int smfjit_addr_info(smfjit_loader *loader, const void *address,
                     struct smfjit_addr_info *info);

/* ---- Statistics ------------------------------------------------------- */

/* A snapshot of the loader's counters. Set size to
 * sizeof(struct smfjit_stats) before the call; fields are only ever
 * appended, and the library fills those that fit and sets size to the
 * bytes it filled (a library older than the header fills fewer). */
struct smfjit_stats {
    size_t size;
    uint64_t modules;                /* loaded now */
    uint64_t exports;                /* distinct exported names now */
    uint64_t shared;                 /* shared memories and tables now */
    uint64_t stale_modules;          /* whose file changed since they loaded */
    uint64_t cache_hits;             /* SMF cache: lookups answered by it */
    uint64_t cache_misses;           /*   lookups that opened the file */
    uint64_t cache_evictions;        /*   files evicted for its limits */
    uint64_t cache_files;            /*   files held now */
    uint64_t cache_bytes;            /*   bytes held now */
    uint64_t instance_hits;          /* resolutions answered by an earlier
                                        instantiation */
    uint64_t instantiation_requests; /* names handed to the instantiator */
    uint64_t instantiations;         /* that produced code */
    uint64_t instantiation_failures; /* that failed */
    uint64_t instances;              /* instantiations held now */
    uint64_t compile_nanos;          /* time instantiating (nested ones also
                                        in their callers) */
    uint64_t compiled_code_bytes;    /* code instantiations published */
    uint64_t templates_decoded;      /* template entries decoded */
    uint64_t templates_verified;     /* template entries verified */
    uint64_t tiered;                 /* instantiations run interpreted first */
    uint64_t interpreted_calls;      /* their calls the interpreter ran */
    uint64_t back_edges;             /* loop back-edges interpreted */
    uint64_t tier_ups;               /* tiered instantiations compiled */
    uint64_t osr_entries;            /* interpreted calls continued in a
                                        compiled loop entry */
    uint64_t tier_compile_failures;  /* compilations that failed (the
                                        instantiation stays interpreted) */
    uint64_t code_bytes;             /* live published code */
    uint64_t executable_bytes;       /* mapped read-execute now */
    uint64_t protection_changes;     /* since the loader was made */
    uint64_t publications;           /* of code, since the loader was made */
};

/* Fills *stats: 0, or SMFJIT_EINVAL (size below that of the size field and
 * one counter). Thread-safe; each counter is read atomically, the set is
 * not one instant. */
int smfjit_stats(smfjit_loader *loader, struct smfjit_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* SMFJIT_H */
