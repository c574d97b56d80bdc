/* The cold-start client of the `start` benchmark area: a fresh process that
 * creates a loader, loads a module, resolves `sum$f64` (instantiated on the
 * miss) and calls it. With `--linked-only` it returns at once: the same
 * program, linked to the same library, doing nothing with it, which is the
 * baseline the figures are counted beyond. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smfjit.h"

typedef double (*sum_f64_fn)(const double *, int64_t);

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--linked-only") == 0) {
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s [--linked-only] MODULE.smf\n", argv[0]);
        return 2;
    }
    smfjit_loader *loader = smfjit_loader_new();
    if (loader == NULL || smfjit_load(loader, argv[1]) != 0) {
        fprintf(stderr, "%s\n", smfjit_last_error());
        return 1;
    }
    sum_f64_fn sum = (sum_f64_fn)smfjit_resolve(loader, "sum$f64");
    if (sum == NULL) {
        fprintf(stderr, "%s\n", smfjit_last_error());
        return 1;
    }
    double xs[3] = {1.5, 2.25, 3.0};
    int ok = sum(xs, 3) == 6.75;
    smfjit_loader_free(loader);
    return ok ? 0 : 3;
}
