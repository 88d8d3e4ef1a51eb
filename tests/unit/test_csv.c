/*
 * fs_csv: rows, line numbers, quoting, BOM, CRLF, caps, errors; every input is fed whole
 * and one byte at a time, and both runs must see the same rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_csv.h"

/* Rows rendered as text: "L<line>#<index>:[f1][f2]...\n", NUL bytes as \0. */
typedef struct {
    char out[8192];
    size_t len;
    int stop_after; /* stop (return 7) after this many rows; 0 = never */
    int rows;
} sink;

static void put(sink *s, const char *p, size_t n)
{
    if (s->len + n < sizeof s->out) {
        memcpy(s->out + s->len, p, n);
        s->len += n;
        s->out[s->len] = '\0';
    }
}

static int on_row(const fs_csv_row *row, void *opaque)
{
    sink *s = opaque;
    char head[64];
    int n = snprintf(head, sizeof head, "L%zu#%zu:", row->line, row->index);
    put(s, head, (size_t)n);
    for (size_t i = 0; i < row->nfields; i++) {
        put(s, "[", 1);
        for (size_t k = 0; k < row->lens[i]; k++) {
            if (row->fields[i][k] == '\0')
                put(s, "\\0", 2);
            else
                put(s, row->fields[i] + k, 1);
        }
        put(s, "]", 1);
        CHECK(row->fields[i][row->lens[i]] == '\0');
    }
    put(s, "\n", 1);
    s->rows++;
    if (s->stop_after && s->rows >= s->stop_after)
        return 7;
    return 0;
}

/* Parses input (chunk = 0: whole; else chunks of that size); returns the final rc and
 * writes the rows into s and the error into err. */
static int parse(const char *in, size_t len, size_t chunk, sink *s, char *err, size_t errsz,
                 size_t max_field, size_t max_fields)
{
    memset(s->out, 0, sizeof s->out);
    s->len = 0;
    s->rows = 0;
    fs_csv *c = fs_csv_new(on_row, s, max_field, max_fields);
    CHECK(c != NULL);
    if (c == NULL)
        return -99;
    int rc = 0;
    if (chunk == 0) {
        rc = fs_csv_feed(c, in, len);
    } else {
        for (size_t o = 0; o < len && rc == 0; o += chunk)
            rc = fs_csv_feed(c, in + o, len - o < chunk ? len - o : chunk);
    }
    if (rc == 0)
        rc = fs_csv_finish(c);
    snprintf(err, errsz, "%s", fs_csv_error(c));
    /* fs_csv_error_at gives the same error in parts. */
    size_t line = 99, column = 99;
    const char *why = fs_csv_error_at(c, &line, &column);
    char whole[512] = "";
    if (rc == -1) {
        CHECK(line > 0 && column > 0);
        snprintf(whole, sizeof whole, "line %zu, column %zu: %s", line, column, why);
    } else {
        CHECK(line == 0 && column == 0);
    }
    CHECK_EQ_STR(whole, fs_csv_error(c));
    fs_csv_free(c);
    return rc;
}

/* Checks one input against the expected rows (or error), whole, byte by byte, and in
 * chunks of 3 and 7. */
static void expect(const char *in, size_t len, int want_rc, const char *want, size_t max_field,
                   size_t max_fields)
{
    static const size_t chunks[] = {0, 1, 3, 7};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        sink s = {0};
        char err[256];
        int rc = parse(in, len, chunks[i], &s, err, sizeof err, max_field, max_fields);
        CHECK_EQ_INT(rc, want_rc);
        if (want_rc == -1)
            CHECK_EQ_STR(err, want);
        else
            CHECK_EQ_STR(s.out, want);
        if (rc != want_rc || strcmp(want_rc == -1 ? err : s.out, want) != 0)
            fprintf(stderr, "  input %.60s... chunk %zu\n", in, chunks[i]);
    }
}

#define EXPECT(lit, rc, want) expect(lit, sizeof(lit) - 1, rc, want, 64, 8)

int main(void)
{
    /* Plain, LF, last row without newline. */
    EXPECT("a,b\n1,2\n3,4", 0, "L1#0:[a][b]\nL2#1:[1][2]\nL3#2:[3][4]\n");
    /* CRLF. */
    EXPECT("a,b\r\n1,2\r\n", 0, "L1#0:[a][b]\nL2#1:[1][2]\n");
    /* UTF-8 BOM is dropped; a partial BOM is data. */
    EXPECT("\xEF\xBB\xBF" "a,b\n1,2\n", 0, "L1#0:[a][b]\nL2#1:[1][2]\n");
    EXPECT("\xEF\xBBx,b\n", 0, "L1#0:[\xEF\xBBx][b]\n");
    EXPECT("\xEF", 0, "L1#0:[\xEF]\n");
    /* Quoted fields with commas, doubled quotes and newlines; row start line is kept. */
    EXPECT("h1,h2\n\"a,b\",\"say \"\"hi\"\"\"\n\"line1\nline2\nline3\",x\nlast,1\n", 0,
           "L1#0:[h1][h2]\nL2#1:[a,b][say \"hi\"]\nL3#2:[line1\nline2\nline3][x]\n"
           "L6#3:[last][1]\n");
    /* Quoted CRLF inside a field stays in the field. */
    EXPECT("\"a\r\nb\",c\r\nd,e\r\n", 0, "L1#0:[a\r\nb][c]\nL3#1:[d][e]\n");
    /* Blank lines are skipped, but still counted. */
    EXPECT("a\n\n\nb\n", 0, "L1#0:[a]\nL4#1:[b]\n");
    /* Empty fields and spaces are kept as written. */
    EXPECT(",, x ,\n", 0, "L1#0:[][][ x ][]\n");
    EXPECT("\"\"\n", 0, "L1#0:[]\n");
    /* Embedded NUL bytes reach the caller with the right length. */
    expect("a\0b,c\n", 6, 0, "L1#0:[a\\0b][c]\n", 64, 8);
    /* Empty input: no rows. */
    EXPECT("", 0, "");
    /* Errors: where and what. */
    EXPECT("a,b\n1,x\"y\n", -1,
           "line 2, column 2: malformed quoting (a quote inside an unquoted field, or text "
           "after a closing quote)");
    EXPECT("a,b\n\"1\"x,2\n", -1,
           "line 2, column 1: malformed quoting (a quote inside an unquoted field, or text "
           "after a closing quote)");
    EXPECT("a,b\n1,\"open\nstill\n", -1,
           "line 2, column 2: quoted field not closed at end of input");
    expect("a,b,c,d\n", 8, -1, "line 1, column 4: more than 3 fields in a row", 64, 3);
    expect("ok\n0123456789\n", 14, -1, "line 2, column 1: field longer than 5 bytes", 5, 3);
    /* A quoted field of exactly the cap is fine however it is chunked (libcsv holds the
     * closing quote in its buffer until the next byte: a fuzz finding). */
    expect("\"abcde\",x\n", 10, 0, "L1#0:[abcde][x]\n", 5, 3);
    expect("\"ab\"\"de\"\n", 9, 0, "L1#0:[ab\"de]\n", 5, 3);
    expect("\"ab\"\"def\"\n", 10, -1, "line 1, column 1: field longer than 5 bytes", 5, 3);
    /* A field that never ends is caught by the cap, not by memory exhaustion. */
    {
        size_t n = 1u << 20;
        char *big = malloc(n);
        CHECK(big != NULL);
        if (big != NULL) {
            memset(big, 'x', n);
            sink s = {0};
            char err[256];
            int rc = parse(big, n, 0, &s, err, sizeof err, 1000, 4);
            CHECK_EQ_INT(rc, -1);
            CHECK_EQ_STR(err, "line 1, column 1: field longer than 1000 bytes");
            free(big);
        }
    }
    /* A callback's stop value is returned and nothing after it is delivered. */
    {
        sink s = {0};
        s.stop_after = 2;
        char err[256];
        static const char in[] = "a\nb\nc\nd\n";
        int rc = parse(in, sizeof in - 1, 1, &s, err, sizeof err, 64, 8);
        CHECK_EQ_INT(rc, 7);
        CHECK_EQ_STR(s.out, "L1#0:[a]\nL2#1:[b]\n");
    }
    /* Test data file: the same rows whole and byte by byte. */
    {
        FILE *f = fopen("data/csv_edge.csv", "rb");
        CHECK(f != NULL);
        if (f != NULL) {
            char in[4096];
            size_t n = fread(in, 1, sizeof in, f);
            fclose(f);
            sink a = {0}, b = {0};
            char err[256];
            CHECK_EQ_INT(parse(in, n, 0, &a, err, sizeof err, 64, 8), 0);
            CHECK_EQ_INT(parse(in, n, 1, &b, err, sizeof err, 64, 8), 0);
            CHECK_EQ_STR(a.out, b.out);
            FILE *g = fopen("data/csv_edge.expected", "rb");
            CHECK(g != NULL);
            if (g != NULL) {
                char want[4096];
                size_t m = fread(want, 1, sizeof want - 1, g);
                want[m] = '\0';
                fclose(g);
                CHECK_EQ_STR(a.out, want);
            }
        }
    }
    return CHECK_DONE();
}
