/* Loads the module named on the command line through the C interface and
 * calls two of its functions; prints what it sees, one fact per line. */
#include <stdio.h>
#include <string.h>

#include "smfjit.h"

typedef int (*add3_fn)(int, int, int);
typedef double (*twice_cos_fn)(double);

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE.smf\n", argv[0]);
        return 2;
    }
    smfjit_loader *loader = smfjit_loader_new();
    if (loader == NULL) {
        fprintf(stderr, "loader_new: %s\n", smfjit_last_error());
        return 1;
    }
    int missing = smfjit_load(loader, "/nonexistent/module.smf");
    printf("load missing: %d %s\n", missing, strlen(smfjit_last_error()) > 0 ? "message" : "silent");

    int rc = smfjit_load(loader, argv[1]);
    if (rc != 0) {
        fprintf(stderr, "load: %d %s\n", rc, smfjit_last_error());
        smfjit_loader_free(loader);
        return 1;
    }
    add3_fn add3 = (add3_fn)smfjit_resolve(loader, "add3");
    twice_cos_fn twice_cos = (twice_cos_fn)smfjit_resolve(loader, "twice_cos");
    if (add3 == NULL || twice_cos == NULL) {
        fprintf(stderr, "resolve: %s\n", smfjit_last_error());
        smfjit_loader_free(loader);
        return 1;
    }
    printf("add3(1, 20, 300) = %d\n", add3(1, 20, 300));
    printf("twice_cos(0.5) = %.17g\n", twice_cos(0.5));
    void *absent = smfjit_resolve(loader, "no_such_symbol");
    printf("resolve absent: %s\n", absent == NULL ? "NULL" : "found");
    printf("last error: %s\n", smfjit_last_error());
    printf("null loader: %d\n", smfjit_load(NULL, argv[1]));
    smfjit_loader_free(loader);
    smfjit_loader_free(NULL);
    return 0;
}
