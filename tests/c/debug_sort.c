/* Resolves `sort$i32` through the C interface and sorts an array longer
 * than the insertion-sort cutoff, so the generated quicksort calls the
 * generated insertion sort: a debugger stopped in `insertion_sort$i32`
 * sees generated callers and this `main` below them. `sort$i64`, which the
 * module compiled ahead of time, sorts an array the same way first. With
 * an argument `spin`, sorts again and again for a few seconds, for a
 * profiler. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smfjit.h"

typedef void (*sort_i32_fn)(int32_t *, int64_t);
typedef void (*sort_i64_fn)(int64_t *, int64_t);

enum { LEN = 64 };

static void fill(int32_t *xs) {
    for (int k = 0; k < LEN; k++) {
        xs[k] = (int32_t)((k * 7919 + 13) % 101) - 50;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s COLLECTIONS.smf [spin]\n", argv[0]);
        return 2;
    }
    int spin = argc > 2 && strcmp(argv[2], "spin") == 0;
    smfjit_loader *loader = smfjit_loader_new();
    if (loader == NULL || smfjit_load(loader, argv[1]) != 0) {
        fprintf(stderr, "load: %s\n", smfjit_last_error());
        return 1;
    }
    sort_i64_fn sort_i64 = (sort_i64_fn)smfjit_resolve(loader, "sort$i64");
    sort_i32_fn sort_i32 = (sort_i32_fn)smfjit_resolve(loader, "sort$i32");
    if (sort_i64 == NULL || sort_i32 == NULL) {
        fprintf(stderr, "resolve: %s\n", smfjit_last_error());
        return 1;
    }
    int64_t longs[LEN];
    for (int k = 0; k < LEN; k++) {
        longs[k] = (int64_t)((k * 7919 + 13) % 101) - 50;
    }
    sort_i64(longs, LEN);
    int32_t xs[LEN];
    time_t start = time(NULL);
    do {
        fill(xs);
        sort_i32(xs, LEN);
    } while (spin && time(NULL) - start < 3);
    for (int k = 1; k < LEN; k++) {
        if (xs[k - 1] > xs[k] || longs[k - 1] > longs[k]) {
            printf("unsorted at %d\n", k);
            return 1;
        }
    }
    printf("sorted %d\n", LEN);
    smfjit_loader_free(loader);
    return 0;
}
