/*
 * Data-driven fs_txn cases: data/txn_cases.txt holds CSV rows and JSON data objects with the
 * exact error or the field values expected (format described at the top of that file). Each
 * CSV case is read whole and byte by byte through fs_txn_reader.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_txn.h"

#define DEFAULT_HDR                                                                     \
    "transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,us_state," \
    "post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon"

/* Decodes \n \r \t \\ \xHH in place; returns the length (the text may hold NUL bytes). */
static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] != '\\' || s[i + 1] == '\0') {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'n')
            s[o++] = '\n';
        else if (c == 'r')
            s[o++] = '\r';
        else if (c == 't')
            s[o++] = '\t';
        else if (c == 'x' && s[i + 1] != '\0' && s[i + 2] != '\0') {
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            s[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else
            s[o++] = c;
    }
    s[o] = '\0';
    return o;
}

typedef struct {
    fs_txn t;
    int n;
} one;

static int keep(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    one *o = opaque;
    (void)row;
    fs_txn_copy(&o->t, t);
    o->n++;
    return 0;
}

/* Reads "<hdr>\n<row>\n" with the given chunk size; the error or "ok" into got. */
static void run_csv(const char *hdr, const char *row, size_t row_len, size_t chunk, one *o,
                    char *got, size_t gotsz)
{
    static char text[16384];
    size_t hl = strlen(hdr);
    if (hl + row_len + 2 > sizeof text) {
        snprintf(got, gotsz, "case too long");
        return;
    }
    memcpy(text, hdr, hl);
    text[hl] = '\n';
    memcpy(text + hl + 1, row, row_len);
    text[hl + 1 + row_len] = '\n';
    size_t len = hl + row_len + 2;
    memset(o, 0, sizeof *o);
    fs_txn_reader *r = fs_txn_reader_new(keep, o);
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += chunk)
        rc = fs_txn_reader_feed(r, text + i, len - i < chunk ? len - i : chunk);
    if (rc == 0)
        rc = fs_txn_reader_finish(r);
    snprintf(got, gotsz, "%s", rc == 0 ? (o->n == 1 ? "ok" : "no row") : fs_txn_reader_error(r));
    fs_txn_reader_free(r);
}

/* The value of a field as the cases file writes it. */
static void field_text(const fs_txn *t, const char *name, char *out, size_t outsz)
{
    double v = NAN;
    int num = 1;
    if (strcmp(name, "time") == 0) {
        snprintf(out, outsz, "%lld", (long long)t->time);
        return;
    } else if (strcmp(name, "target") == 0) {
        snprintf(out, outsz, "%d", t->target);
        return;
    } else if (strcmp(name, "transaction_id") == 0) {
        snprintf(out, outsz, "%s", t->transaction_id);
        return;
    } else if (strcmp(name, "amount") == 0)
        v = t->amount;
    else if (strcmp(name, "lat") == 0)
        v = t->lat;
    else if (strcmp(name, "lon") == 0)
        v = t->lon;
    else if (strcmp(name, "post_code") == 0)
        v = t->post_code;
    else if (strcmp(name, "population_city") == 0)
        v = t->population_city;
    else if (strcmp(name, "merchant_lat") == 0)
        v = t->merchant_lat;
    else if (strcmp(name, "merchant_lon") == 0)
        v = t->merchant_lon;
    else
        num = 0;
    if (num) {
        if (isnan(v))
            snprintf(out, outsz, "nan");
        else
            snprintf(out, outsz, "%.17g", v);
        return;
    }
    const char *s = NULL;
    if (strcmp(name, "merch") == 0)
        s = t->merch;
    else if (strcmp(name, "jobs") == 0)
        s = t->jobs;
    else if (strcmp(name, "street") == 0)
        s = t->street;
    else if (strcmp(name, "name_1") == 0)
        s = t->name_1;
    else if (strcmp(name, "cat_id") == 0)
        s = t->cat_id;
    snprintf(out, outsz, "%s", s != NULL ? s : "(unknown field)");
}

int main(void)
{
    FILE *f = fopen("data/txn_cases.txt", "r");
    CHECK(f != NULL);
    if (f == NULL)
        return CHECK_DONE();
    static char line[8192], hdr[8192] = DEFAULT_HDR, got[1024], got1[1024];
    one *o = calloc(1, sizeof *o), *o1 = calloc(1, sizeof *o1);
    int have = 0, cases = 0, lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (strncmp(line, "hdr: ", 5) == 0) {
            snprintf(hdr, sizeof hdr, "%s", line + 5);
        } else if (strncmp(line, "csv: ", 5) == 0) {
            size_t len = unescape(line + 5);
            run_csv(hdr, line + 5, len, 1 << 20, o, got, sizeof got);
            run_csv(hdr, line + 5, len, 1, o1, got1, sizeof got1);
            CHECK_EQ_STR(got1, got);
            have = 1;
            cases++;
        } else if (strncmp(line, "json: ", 6) == 0) {
            json_error_t je;
            json_t *d = json_loads(line + 6, 0, &je);
            CHECK(d != NULL);
            char err[512];
            memset(o, 0, sizeof *o);
            if (fs_txn_from_json(&o->t, d, err, sizeof err) == 0)
                snprintf(got, sizeof got, "ok");
            else
                snprintf(got, sizeof got, "%s", err);
            json_decref(d);
            have = 1;
            cases++;
        } else if (strncmp(line, "want: ", 6) == 0) {
            CHECK(have);
            CHECK_EQ_STR(got, line + 6);
            if (strcmp(got, line + 6) != 0)
                fprintf(stderr, "  data/txn_cases.txt:%d\n", lineno);
        } else if (strncmp(line, "check: ", 7) == 0) {
            char *eq = strchr(line + 7, '=');
            CHECK(eq != NULL && strcmp(got, "ok") == 0);
            if (eq == NULL)
                continue;
            *eq = '\0';
            unescape(eq + 1);
            char val[4096];
            field_text(&o->t, line + 7, val, sizeof val);
            CHECK_EQ_STR(val, eq + 1);
            if (strcmp(val, eq + 1) != 0)
                fprintf(stderr, "  data/txn_cases.txt:%d\n", lineno);
        }
    }
    fclose(f);
    free(o);
    free(o1);
    printf("%d cases\n", cases);
    CHECK(cases >= 35);
    return CHECK_DONE();
}
