/* Loads the collections library and the application module with the
 * binding named on the command line ("now" or "lazy") and calls the
 * application's functions. Their imports (sum$f32, sort$u16, the Vec$i64
 * methods) are instantiations no module contains: with "now" they are
 * compiled while app.smf loads, with "lazy" on their first call.
 *
 * usage: app_bindings now|lazy COLLECTIONS.smf APP.smf */
#include <stdio.h>
#include <string.h>

#include "smfjit.h"

typedef float (*mean_f32_fn)(const float *, long);
typedef unsigned short (*median_u16_fn)(unsigned short *, long);
typedef long (*sum_of_squares_fn)(long);

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s now|lazy COLLECTIONS.smf APP.smf\n", argv[0]);
        return 2;
    }
    int binding = strcmp(argv[1], "lazy") == 0 ? SMFJIT_BIND_LAZY : SMFJIT_BIND_NOW;
    smfjit_loader *loader = smfjit_loader_new_with_binding(binding);
    if (!loader) {
        fprintf(stderr, "loader: %s\n", smfjit_last_error());
        return 1;
    }
    for (int i = 2; i < 4; i++) {
        if (smfjit_load(loader, argv[i]) != 0) {
            fprintf(stderr, "load %s: %s\n", argv[i], smfjit_last_error());
            return 1;
        }
    }
    mean_f32_fn mean = (mean_f32_fn)smfjit_resolve(loader, "mean_f32");
    median_u16_fn median = (median_u16_fn)smfjit_resolve(loader, "median_u16");
    sum_of_squares_fn squares = (sum_of_squares_fn)smfjit_resolve(loader, "sum_of_squares");
    if (!mean || !median || !squares) {
        fprintf(stderr, "resolve: %s\n", smfjit_last_error());
        return 1;
    }

    float xs[] = {1.5f, 2.5f, 4.0f, 8.0f};
    printf("mean_f32 = %.9g\n", (double)mean(xs, 4));
    unsigned short ys[] = {300, 7, 65535, 0, 12};
    printf("median_u16 = %u\n", (unsigned)median(ys, 5));
    printf("sorted = %u %u %u %u %u\n", ys[0], ys[1], ys[2], ys[3], ys[4]);
    printf("sum_of_squares(100) = %ld\n", squares(100));
    printf("bad binding: %s\n", smfjit_loader_new_with_binding(7) ? "accepted" : smfjit_last_error());

    smfjit_loader_free(loader);
    return 0;
}
