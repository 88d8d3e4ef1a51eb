/* Feature rows for the engine benchmarks: a bundle's generated rows or a raw row file (see
 * bench_rows.h). */
#include "bench_rows.h"

#include <stdio.h>
#include <stdlib.h>

#include "fs_bundle.h"
#include "fs_features.h"
#include "fs_gen.h"
#include "fs_profile_store.h"

double *bench_bundle_rows(const char *prog, const char *dir, size_t nrows, int *nf)
{
    char err[1024];
    double *x = NULL;
    fs_gen *g = NULL;
    fs_profile_store *store = NULL;
    fs_bundle *b = fs_bundle_load(dir, err, sizeof err);
    fs_gen_opts o;
    if (b == NULL) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return NULL;
    }
    fs_gen_opts_default(&o);
    o.seed = 2024;
    *nf = fs_bundle_num_features(b);
    g = fs_gen_new(&o, err, sizeof err);
    store = fs_profile_store_new(0);
    x = malloc(nrows * (size_t)*nf * sizeof(double));
    if (g == NULL || store == NULL || x == NULL) {
        fprintf(stderr, "%s: %s\n", prog, g == NULL ? err : "out of memory");
        goto fail;
    }
    for (size_t r = 0; r < nrows; r++) {
        const fs_txn *t;
        fs_gen_next(g, &t, NULL, NULL);
        fs_profile *p = fs_features_customer(store, t, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err);
        if (p == NULL || fs_bundle_features(b, t, p, x + r * (size_t)*nf, err, sizeof err) != 0) {
            fprintf(stderr, "%s: generated row %zu: %s\n", prog, r, err);
            goto fail;
        }
    }
    goto out;
fail:
    free(x);
    x = NULL;
out:
    fs_profile_store_free(store);
    fs_gen_free(g);
    fs_bundle_free(b);
    return x;
}

double *bench_read_rows(const char *prog, const char *path, int nf, size_t *nrows)
{
    FILE *f = fopen(path, "rb");
    double *x = NULL;
    if (f == NULL) {
        fprintf(stderr, "%s: %s: cannot open\n", prog, path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long size = ftell(f);
    if (size <= 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    size_t have = (size_t)size / (sizeof(double) * (size_t)nf);
    if (*nrows == 0 || *nrows > have)
        *nrows = have;
    x = malloc(*nrows * (size_t)nf * sizeof(double));
    if (x == NULL || fread(x, sizeof(double), *nrows * (size_t)nf, f) != *nrows * (size_t)nf) {
        free(x);
        x = NULL;
    }
out:
    fclose(f);
    return x;
}
