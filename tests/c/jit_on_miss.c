/* Loads the collections module named on the command line through the C
 * interface and calls instantiations that no module precompiled: the loader
 * compiles them from the module's templates on the first resolve. Prints
 * what it sees, one fact per line. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smfjit.h"

typedef double (*sum_f64_fn)(const double *, int64_t);
typedef void (*sort_i64_fn)(int64_t *, int64_t);
typedef void (*sort_i32_fn)(int32_t *, int64_t);

static void print_i64s(const char *what, const int64_t *xs, int n) {
    printf("%s:", what);
    for (int k = 0; k < n; k++) {
        printf(" %lld", (long long)xs[k]);
    }
    printf("\n");
}

static void print_i32s(const char *what, const int32_t *xs, int n) {
    printf("%s:", what);
    for (int k = 0; k < n; k++) {
        printf(" %d", xs[k]);
    }
    printf("\n");
}

/* Resolves a name that must not resolve and prints the message. */
static void print_failure(smfjit_loader *loader, const char *symbol) {
    void *address = smfjit_resolve(loader, symbol);
    printf("%s: %s, %s\n", symbol, address == NULL ? "NULL" : "resolved", smfjit_last_error());
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s COLLECTIONS.smf\n", argv[0]);
        return 2;
    }
    smfjit_loader *loader = smfjit_loader_new();
    if (loader == NULL) {
        fprintf(stderr, "loader_new: %s\n", smfjit_last_error());
        return 1;
    }
    int rc = smfjit_load(loader, argv[1]);
    if (rc != 0) {
        fprintf(stderr, "load: %d %s\n", rc, smfjit_last_error());
        smfjit_loader_free(loader);
        return 1;
    }

    sum_f64_fn sum_f64 = (sum_f64_fn)smfjit_resolve(loader, "sum$f64");
    sort_i64_fn sort_i64 = (sort_i64_fn)smfjit_resolve(loader, "sort$i64");
    sort_i32_fn sort_i32 = (sort_i32_fn)smfjit_resolve(loader, "sort$i32");
    if (sum_f64 == NULL || sort_i64 == NULL || sort_i32 == NULL) {
        fprintf(stderr, "resolve: %s\n", smfjit_last_error());
        smfjit_loader_free(loader);
        return 1;
    }
    printf("same pointer again: %s\n",
           (void *)sum_f64 == smfjit_resolve(loader, "sum$f64") ? "yes" : "no");

    const double xs[] = {0.5, 2.25, -1.0, 8.0};
    printf("sum$f64 of 0: %.17g\n", sum_f64(xs, 0));
    printf("sum$f64 of 3: %.17g\n", sum_f64(xs, 3));
    printf("sum$f64 of 4: %.17g\n", sum_f64(xs, 4));

    int64_t longs[20];
    for (int k = 0; k < 20; k++) {
        longs[k] = (int64_t)((k * 7919 + 13) % 101) - 50;
    }
    longs[3] = INT64_MIN;
    longs[11] = INT64_MAX;
    sort_i64(longs, 20);
    print_i64s("sort$i64", longs, 20);

    int32_t ints[] = {5, -3, 2147483647, 0, -2147483647 - 1, 5, 17};
    sort_i32(ints, 7);
    print_i32s("sort$i32", ints, 7);
    int32_t one[] = {42};
    sort_i32(one, 1);
    print_i32s("sort$i32 of 1", one, 1);

    print_failure(loader, "no_such_template$i64");
    print_failure(loader, "sum$bool");

    smfjit_loader_free(loader);
    return 0;
}
