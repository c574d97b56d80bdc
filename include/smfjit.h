/*
 * smfjit.h - the C interface of the smfjit loader (libsmfjit.so).
 *
 * A loader maps SMF modules, places their code in write-xor-execute memory,
 * binds their imports and resolves names: first the exports of loaded
 * modules, then instantiations made earlier, then the template instantiator.
 *
 * Errors: functions returning int return 0 on success or a negative code;
 * functions returning a pointer return NULL. Either way smfjit_last_error()
 * then describes the failure. Codes:
 *   -1 invalid argument (NULL, or text that is not UTF-8)
 *   -2 the file cannot be opened, read or mapped, or changed while read
 *   -3 the file is not a valid SMF module (or its note is invalid), or it
 *      was built for another platform or architecture
 *   -4 the module uses a layout the loader does not support, or a shared
 *      memory or table it defines or imports does not fit what is loaded
 *      (a name defined twice, another kind, another signature or size)
 *   -5 an import (a symbol, a shared memory or table) is not defined anywhere
 *   -6 a relocation's result does not fit its field
 *   -7 an instantiation failed, nested too deeply, or formed a cycle
 *   -8 executable, data or shared memory could not be obtained
 *   -9 no module is loaded under that handle
 *  -10 a configuration value (an environment variable) is not valid
 *      (smfjit_loader_new reports it by returning NULL)
 *  -11 a module cannot be unloaded while another imports its shared
 *      memory or table (no function of this header unloads yet)
 *
 * Threads: a loader may be used from any number of threads at once.
 */
#ifndef SMFJIT_H
#define SMFJIT_H

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque loader. */
typedef struct smfjit_loader smfjit_loader;

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
 * An empty variable counts as unset. An invalid value makes this return
 * NULL, and smfjit_last_error() names the variable and what is wrong. */
smfjit_loader *smfjit_loader_new(void);

/* Bindings for smfjit_loader_new_with_binding. */
#define SMFJIT_BIND_NOW 0  /* every import resolved (and instantiated) at load */
#define SMFJIT_BIND_LAZY 1 /* each import resolved on its first call */

/* Like smfjit_loader_new (the environment included), with the binding of
 * the modules it loads. Returns NULL for any other binding value. */
smfjit_loader *smfjit_loader_new_with_binding(int binding);

/* Loads the SMF module at path, binding its imports as the loader says
 * (smfjit_loader_new: now). Returns 0, or a negative code. */
int smfjit_load(smfjit_loader *loader, const char *path);

/* The address of symbol, or NULL. The address stays valid until its module
 * is unloaded or replaced, or the loader is freed. */
void *smfjit_resolve(smfjit_loader *loader, const char *symbol);

/* The calling thread's last error message ("" if none). The text stays
 * valid until the thread's next call into the library. */
const char *smfjit_last_error(void);

/* Frees a loader and every module it loaded. NULL is ignored. No code of
 * its modules may run during or after the call. */
void smfjit_loader_free(smfjit_loader *loader);

#ifdef __cplusplus
}
#endif

#endif /* SMFJIT_H */
