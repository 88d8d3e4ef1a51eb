/*
 * fs_csv: streaming CSV rows over libcsv, with physical line numbers and hard caps.
 *
 * libcsv reports fields and row ends but not where they are. To know the line a row starts
 * on, input is handed to libcsv one physical line at a time (split after each LF, and in
 * pieces of at most FS_CSV_PIECE bytes so an endless line cannot grow libcsv's field buffer
 * past the cap unnoticed): whatever libcsv consumed from one piece lies on one line.
 */
#include "fs_csv.h"

#include <csv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest piece handed to libcsv at once; bounds how far a field can overshoot max_field
 * inside libcsv's own buffer before we notice. */
#define FS_CSV_PIECE 4096

/* libcsv's parser states (csv.c, stable since 1.0): no row in progress, and "a quoted field
 * met a quote", which libcsv has tentatively appended to the field buffer. */
#define FS_CSV_ROW_NOT_BEGUN 0
#define FS_CSV_FIELD_MIGHT_HAVE_ENDED 3

struct fs_csv {
    struct csv_parser p;
    fs_csv_row_cb cb;
    void *opaque;
    size_t max_field, max_fields;

    /* The row being assembled: field bytes back to back, each NUL-terminated. */
    char *buf;
    size_t buf_len, buf_cap, buf_max;
    size_t *offs;   /* start of each field in buf */
    size_t *lens;   /* length of each field */
    const char **fields;
    size_t nfields;

    size_t line;        /* 1-based line of the bytes being parsed */
    size_t row_line;    /* line where the current row started, 0 if not started */
    size_t row_index;   /* index of the next row delivered */
    unsigned bom_seen;  /* bytes of the UTF-8 BOM matched so far */
    int bom_done;
    int finished;
    int status;         /* 0, a callback's stop value, or -1 on error */
    size_t err_line, err_column; /* where the error is */
    size_t err_why;     /* offset in err of the reason, after "line L, column C: " */
    char err[256];
};

static const unsigned char utf8_bom[3] = {0xEF, 0xBB, 0xBF};

/* Spaces are data: "12.5 " must reach the validator as written, not silently trimmed. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void set_error(fs_csv *c, size_t line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(fs_csv *c, size_t line, size_t column, const char *fmt, ...)
{
    if (c->status != 0)
        return;
    int n = snprintf(c->err, sizeof c->err, "line %zu, column %zu: ", line, column);
    if (n < 0 || (size_t)n >= sizeof c->err)
        n = 0;
    c->err_line = line;
    c->err_column = column;
    c->err_why = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
    va_end(ap);
    c->status = -1;
}

static size_t current_row_line(const fs_csv *c)
{
    return c->row_line != 0 ? c->row_line : c->line;
}

static void on_field(void *data, size_t len, void *opaque)
{
    fs_csv *c = opaque;
    if (c->status != 0)
        return;
    if (c->row_line == 0)
        c->row_line = c->line;
    /* Length before count: a field in progress may already have been caught by the length
     * check in after_piece, and the error must not depend on how the input was chunked. */
    if (len > c->max_field) {
        set_error(c, current_row_line(c), c->nfields + 1, "field longer than %zu bytes",
                  c->max_field);
        return;
    }
    if (c->nfields >= c->max_fields) {
        set_error(c, current_row_line(c), c->nfields + 1, "more than %zu fields in a row",
                  c->max_fields);
        return;
    }
    size_t need = c->buf_len + len + 1;
    if (need > c->buf_cap) {
        size_t cap = c->buf_cap ? c->buf_cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > c->buf_max)
            cap = c->buf_max;
        if (cap < need) {
            set_error(c, current_row_line(c), c->nfields + 1, "row longer than %zu bytes",
                      c->buf_max);
            return;
        }
        char *nb = realloc(c->buf, cap);
        if (nb == NULL) {
            set_error(c, current_row_line(c), c->nfields + 1, "out of memory");
            return;
        }
        c->buf = nb;
        c->buf_cap = cap;
    }
    if (len > 0)
        memcpy(c->buf + c->buf_len, data, len);
    c->buf[c->buf_len + len] = '\0';
    c->offs[c->nfields] = c->buf_len;
    c->lens[c->nfields] = len;
    c->nfields++;
    c->buf_len += len + 1;
}

static void on_row(int term, void *opaque)
{
    fs_csv *c = opaque;
    (void)term;
    if (c->status != 0)
        return;
    for (size_t i = 0; i < c->nfields; i++)
        c->fields[i] = c->buf + c->offs[i];
    fs_csv_row row = {
        .nfields = c->nfields,
        .fields = c->fields,
        .lens = c->lens,
        .line = current_row_line(c),
        .index = c->row_index,
    };
    int rc = c->cb(&row, c->opaque);
    c->row_index++;
    c->nfields = 0;
    c->buf_len = 0;
    c->row_line = 0;
    if (rc != 0)
        c->status = rc;
}

fs_csv *fs_csv_new(fs_csv_row_cb cb, void *opaque, size_t max_field, size_t max_fields)
{
    fs_csv *c = NULL;
    if (cb == NULL || max_field == 0 || max_fields == 0 || max_fields > SIZE_MAX / 64 ||
        max_field > SIZE_MAX / 4 / max_fields)
        goto fail;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        goto fail;
    if (csv_init(&c->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(c);
        c = NULL;
        goto fail;
    }
    csv_set_space_func(&c->p, no_space);
    c->cb = cb;
    c->opaque = opaque;
    c->max_field = max_field;
    c->max_fields = max_fields;
    c->buf_max = (max_field + 1) * max_fields;
    c->offs = calloc(max_fields, sizeof *c->offs);
    c->lens = calloc(max_fields, sizeof *c->lens);
    c->fields = calloc(max_fields, sizeof *c->fields);
    if (c->offs == NULL || c->lens == NULL || c->fields == NULL)
        goto fail;
    c->line = 1;
    return c;
fail:
    fs_csv_free(c);
    return NULL;
}

void fs_csv_free(fs_csv *c)
{
    if (c == NULL)
        return;
    csv_free(&c->p);
    free(c->buf);
    free(c->offs);
    free(c->lens);
    free(c->fields);
    free(c);
}

/* Length of the field libcsv is assembling, without the tentative closing quote. */
static size_t pending_len(const fs_csv *c)
{
    size_t n = c->p.entry_pos;
    if (c->p.pstate == FS_CSV_FIELD_MIGHT_HAVE_ENDED) {
        size_t extra = c->p.spaces + 1;
        n = n > extra ? n - extra : 0;
    }
    return n;
}

/* After libcsv consumed a piece: the row started here if it is now in progress and had not
 * started before; then checks the field under construction against the cap. */
static void after_piece(fs_csv *c)
{
    if (c->status != 0)
        return;
    if (c->p.pstate != FS_CSV_ROW_NOT_BEGUN && c->row_line == 0)
        c->row_line = c->line;
    if (pending_len(c) > c->max_field)
        set_error(c, current_row_line(c), c->nfields + 1, "field longer than %zu bytes",
                  c->max_field);
}

static void parse_error(fs_csv *c)
{
    int e = csv_error(&c->p);
    /* A field already over the cap is reported as such, whatever bytes follow: the same
     * error for the same input however it was chunked. */
    if (pending_len(c) > c->max_field)
        set_error(c, current_row_line(c), c->nfields + 1, "field longer than %zu bytes",
                  c->max_field);
    else if (e == CSV_EPARSE)
        set_error(c, c->line, c->nfields + 1,
                  "malformed quoting (a quote inside an unquoted field, or text after a "
                  "closing quote)");
    else
        set_error(c, c->line, c->nfields + 1, "%s", csv_strerror(e));
}

/*
 * Fast path. A whole line met between rows whose fields are either plain (no quote) or
 * wholly quoted without quotes inside ("a, b"), with no CR but the one before its LF, splits
 * the same way in libcsv and in a memchr loop; the loop is several times faster and hands
 * the fields to the same callbacks, so caps, errors and row numbering are shared. Any other
 * line (doubled quotes, a quoted line break, text after a closing quote) goes to libcsv.
 * The fuzz harness checks the two paths against each other: fed whole, lines take this
 * path; fed in small chunks, they go through libcsv.
 */

/* Walks the fields of a line: emit = 0 only checks the shape, emit = 1 delivers them. */
static int fast_fields(fs_csv *c, const unsigned char *s, size_t len, int emit)
{
    const unsigned char *end = s + len;
    if (memchr(s, '\r', len) != NULL)
        return -1;
    for (;;) {
        const unsigned char *start, *stop, *next;
        if (s < end && *s == '"') {
            start = s + 1;
            stop = memchr(start, '"', (size_t)(end - start));
            if (stop == NULL)
                return -1;
            next = stop + 1;
            if (next < end && *next != ',')
                return -1;
        } else {
            start = s;
            next = memchr(s, ',', (size_t)(end - s));
            stop = next != NULL ? next : end;
            if (memchr(start, '"', (size_t)(stop - start)) != NULL)
                return -1;
        }
        if (emit)
            on_field((void *)start, (size_t)(stop - start), c);
        if (next == NULL || next >= end)
            break;
        s = next + 1;
    }
    if (emit)
        on_row('\n', c);
    return 0;
}

/* Takes a line the fast way if it can; 1 if it did. */
static int fast_line(fs_csv *c, const unsigned char *s, size_t len)
{
    if (len == 0)
        return 1; /* a blank line: libcsv skips it too */
    if (fast_fields(c, s, len, 0) != 0)
        return 0;
    fast_fields(c, s, len, 1);
    return 1;
}

/* Feeds bytes that are past the BOM check. */
static void feed_body(fs_csv *c, const unsigned char *s, size_t len)
{
    while (len > 0 && c->status == 0) {
        if (c->p.pstate == FS_CSV_ROW_NOT_BEGUN) {
            const unsigned char *nl = memchr(s, '\n', len);
            if (nl != NULL) {
                size_t line_len = (size_t)(nl - s);
                size_t body = line_len;
                if (body > 0 && s[body - 1] == '\r')
                    body--;
                if (fast_line(c, s, body)) {
                    c->line++;
                    s += line_len + 1;
                    len -= line_len + 1;
                    continue;
                }
            }
        }
        size_t n = len < FS_CSV_PIECE ? len : FS_CSV_PIECE;
        const unsigned char *nl = memchr(s, '\n', n);
        if (nl != NULL)
            n = (size_t)(nl - s) + 1;
        if (csv_parse(&c->p, s, n, on_field, on_row, c) != n) {
            parse_error(c);
            return;
        }
        after_piece(c);
        if (nl != NULL)
            c->line++;
        s += n;
        len -= n;
    }
}

int fs_csv_feed(fs_csv *c, const void *data, size_t len)
{
    const unsigned char *s = data;
    if (c->status != 0)
        return c->status;
    if (c->finished) {
        set_error(c, c->line, 1, "input fed after fs_csv_finish");
        return c->status;
    }
    while (!c->bom_done && len > 0) {
        if (s[0] == utf8_bom[c->bom_seen]) {
            c->bom_seen++;
            s++;
            len--;
            if (c->bom_seen == sizeof utf8_bom)
                c->bom_done = 1;
            continue;
        }
        /* Not a BOM after all: the bytes held back are data. */
        c->bom_done = 1;
        feed_body(c, utf8_bom, c->bom_seen);
    }
    feed_body(c, s, len);
    return c->status;
}

int fs_csv_finish(fs_csv *c)
{
    if (c->status != 0 || c->finished)
        return c->status;
    if (!c->bom_done) {
        c->bom_done = 1;
        feed_body(c, utf8_bom, c->bom_seen);
        if (c->status != 0)
            return c->status;
    }
    c->finished = 1;
    size_t start = current_row_line(c);
    if (csv_fini(&c->p, on_field, on_row, c) != 0 && c->status == 0)
        set_error(c, start, c->nfields + 1, "quoted field not closed at end of input");
    return c->status;
}

const char *fs_csv_error(const fs_csv *c)
{
    return c->status == -1 ? c->err : "";
}

const char *fs_csv_error_at(const fs_csv *c, size_t *line, size_t *column)
{
    if (c->status != -1) {
        *line = *column = 0;
        return "";
    }
    *line = c->err_line;
    *column = c->err_column;
    return c->err + c->err_why;
}
