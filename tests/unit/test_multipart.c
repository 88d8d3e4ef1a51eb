/*
 * fs_multipart: data-driven cases (body, expected parts or error), each fed whole and then
 * byte by byte and in every two-piece split, so chunk boundaries can never change a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_multipart.h"

/* What the callbacks saw, rendered as text: "[name|filename|type]data;" per part. */
struct seen {
    char text[4096];
    size_t len;
    int stop_after_bytes; /* > 0: stop (return 7) once this many data bytes were seen */
    size_t data_bytes;
};

static void put(struct seen *s, const char *p, size_t n)
{
    if (s->len + n >= sizeof s->text)
        n = sizeof s->text - 1 - s->len;
    memcpy(s->text + s->len, p, n);
    s->len += n;
    s->text[s->len] = '\0';
}

static int on_begin(const fs_multipart_part *part, void *opaque)
{
    struct seen *s = opaque;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "[%s|%s%s|%s]", part->name, part->has_filename ? "f:" : "",
                     part->filename, part->content_type);
    put(s, buf, (size_t)n);
    return 0;
}

static int on_data(const void *data, size_t len, void *opaque)
{
    struct seen *s = opaque;
    put(s, data, len);
    s->data_bytes += len;
    if (s->stop_after_bytes > 0 && s->data_bytes >= (size_t)s->stop_after_bytes)
        return 7;
    return 0;
}

static int on_end(void *opaque)
{
    put(opaque, ";", 1);
    return 0;
}

static const fs_multipart_callbacks cbs = {on_begin, on_data, on_end};

/* Feeds body in pieces of `step` bytes (0 = whole, SIZE_MAX-ish = split at `split`). */
static int run(const char *boundary, const char *body, size_t len, size_t step, size_t split,
               struct seen *s, char *err, size_t err_size)
{
    memset(s, 0, sizeof *s);
    fs_multipart *mp = fs_multipart_new(boundary, &cbs, s, err, err_size);
    if (mp == NULL)
        return -2;
    int rc = 0;
    if (split != 0) {
        rc = fs_multipart_feed(mp, body, split);
        if (rc == 0)
            rc = fs_multipart_feed(mp, body + split, len - split);
    } else if (step == 0) {
        rc = fs_multipart_feed(mp, body, len);
    } else {
        for (size_t i = 0; i < len && rc == 0; i += step)
            rc = fs_multipart_feed(mp, body + i, len - i < step ? len - i : step);
    }
    if (rc == 0)
        rc = fs_multipart_finish(mp);
    snprintf(err, err_size, "%s", rc != 0 ? fs_multipart_error(mp) : "");
    fs_multipart_free(mp);
    return rc;
}

struct tcase {
    const char *body;
    const char *want; /* expected rendering, or NULL when an error is expected */
    const char *err;  /* substring of the expected error */
};

#define CRLF "\r\n"
static const struct tcase cases[] = {
    {"--XyZ" CRLF "Content-Disposition: form-data; name=\"file\"; filename=\"a.csv\"" CRLF
     "Content-Type: text/csv" CRLF CRLF "a,b\r\n1,2\r\n" CRLF "--XyZ--" CRLF,
     "[file|f:a.csv|text/csv]a,b\r\n1,2\r\n;", NULL},
    /* preamble, two parts, transport padding, epilogue, no trailing CRLF */
    {"junk\r\n--XyZ  " CRLF "content-disposition: form-data; name=note" CRLF CRLF "hi" CRLF
     "--XyZ" CRLF "Content-Disposition: form-data; name=\"file\"; filename=\"\"" CRLF
     "Content-Type: Application/Octet-Stream; charset=x" CRLF CRLF "\r\r\n-\r\n--Xy" CRLF
     "--XyZ--epilogue\r\n--XyZ",
     "[note||]hi;[file|f:|application/octet-stream]\r\r\n-\r\n--Xy;", NULL},
    /* quoted-string escapes and unknown parameters */
    {"--XyZ" CRLF "Content-Disposition: form-data; name=\"f\\\"q\"; x=\"a;b\"; filename=z" CRLF
     "X-Other: y" CRLF CRLF CRLF "--XyZ--",
     "[f\"q|f:z|];", NULL},
    /* an empty body part right after the headers */
    {"--XyZ" CRLF CRLF CRLF "--XyZ--", "[||];", NULL},
    {"", NULL, "no boundary"},
    {"just text", NULL, "no boundary"},
    {"--XyZ" CRLF "Content-Disposition: form-data; name=\"file\"" CRLF CRLF "abc", NULL,
     "before the closing boundary"},
    {"--XyZ" CRLF "Content-Disposition: form-data; name=\"file\"", NULL,
     "before the closing boundary"},
    {"--XyZx" CRLF CRLF CRLF "--XyZ--", NULL, "expected CRLF"},
    {"--XyZ-x", NULL, "expected \"--\""},
    {"--XyZ\rx", NULL, "expected LF"},
    {"--XyZ" CRLF "Content-Disposition: attachment" CRLF CRLF CRLF "--XyZ--", NULL,
     "not form-data"},
    {"--XyZ" CRLF "Content-Disposition: form-data; name=\"unterminated" CRLF CRLF CRLF
     "--XyZ--", NULL, "malformed Content-Disposition"},
    {"--XyZ" CRLF "NoColonHere" CRLF CRLF CRLF "--XyZ--", NULL, "without a name"},
    {"--XyZ" CRLF "A: b\nC: d" CRLF CRLF CRLF "--XyZ--", NULL, "bare LF"},
    {"--XyZ" CRLF " folded: x" CRLF CRLF CRLF "--XyZ--", NULL, "folded"},
    {"--XyZ" CRLF "A: b\rC" CRLF CRLF CRLF "--XyZ--", NULL, "CR without LF"},
};

static void test_cases(void)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct tcase *t = &cases[c];
        size_t len = strlen(t->body);
        for (size_t mode = 0; mode <= len + 1; mode++) {
            struct seen s;
            char err[256];
            /* mode 0: whole; 1: byte by byte; 2..len: split at mode - 1 */
            int rc = run("XyZ", t->body, len, mode == 1 ? 1 : 0, mode >= 2 ? mode - 1 : 0, &s,
                         err, sizeof err);
            if (mode >= 2 && mode - 1 >= len)
                continue;
            if (t->want != NULL) {
                if (rc != 0 || strcmp(s.text, t->want) != 0)
                    fprintf(stderr, "case %zu mode %zu: rc %d err \"%s\"\n", c, mode, rc, err);
                CHECK_EQ_INT(rc, 0);
                CHECK_EQ_STR(s.text, t->want);
            } else {
                CHECK_EQ_INT(rc, -1);
                if (strstr(err, t->err) == NULL)
                    fprintf(stderr, "case %zu mode %zu: error \"%s\" lacks \"%s\"\n", c, mode, err,
                            t->err);
                CHECK(strstr(err, t->err) != NULL);
            }
        }
    }
}

static void test_boundary_header(void)
{
    char b[FS_MULTIPART_BOUNDARY_MAX + 1], err[200];
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-data; boundary=abc", b, sizeof b, err,
                                       sizeof err), 0);
    CHECK_EQ_STR(b, "abc");
    CHECK_EQ_INT(fs_multipart_boundary("Multipart/Form-Data;charset=utf-8;  BOUNDARY=\"a b:c\"",
                                       b, sizeof b, err, sizeof err), 0);
    CHECK_EQ_STR(b, "a b:c");
    CHECK_EQ_INT(fs_multipart_boundary("text/csv", b, sizeof b, err, sizeof err), -1);
    CHECK(strstr(err, "not multipart/form-data") != NULL);
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-datax; boundary=a", b, sizeof b, err,
                                       sizeof err), -1);
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-data", b, sizeof b, err, sizeof err), -1);
    CHECK(strstr(err, "no boundary") != NULL);
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-data; boundary=\"a\r\"", b, sizeof b, err,
                                       sizeof err), -1);
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-data; boundary=", b, sizeof b, err,
                                       sizeof err), -1);
    CHECK_EQ_INT(fs_multipart_boundary("multipart/form-data; boundary=\"ab \"", b, sizeof b, err,
                                       sizeof err), -1);
    /* 71 characters is one too many (RFC 2046). */
    char ct[200];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 0);
    CHECK_EQ_INT(fs_multipart_boundary(ct, b, sizeof b, err, sizeof err), -1);
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 0);
    CHECK_EQ_INT(fs_multipart_boundary(ct, b, sizeof b, err, sizeof err), 0);
    CHECK_EQ_INT(fs_multipart_boundary(NULL, b, sizeof b, err, sizeof err), -1);
    CHECK(fs_multipart_new("bad\rboundary", &cbs, NULL, err, sizeof err) == NULL);
    CHECK(fs_multipart_new("", &cbs, NULL, err, sizeof err) == NULL);
}

/* A callback's stop value comes back from feed, and the parser then refuses input. */
static void test_stop_and_limits(void)
{
    struct seen s;
    char err[256];
    memset(&s, 0, sizeof s);
    s.stop_after_bytes = 3;
    fs_multipart *mp = fs_multipart_new("XyZ", &cbs, &s, err, sizeof err);
    const char *body = "--XyZ\r\n\r\nabcdef\r\n--XyZ--";
    CHECK_EQ_INT(fs_multipart_feed(mp, body, strlen(body)), 7);
    CHECK_EQ_INT(fs_multipart_feed(mp, "x", 1), 7);
    CHECK_EQ_INT(fs_multipart_finish(mp), 7);
    fs_multipart_free(mp);

    /* Too many parts. */
    char big[8192];
    size_t n = 0;
    for (int i = 0; i <= FS_MULTIPART_PARTS_MAX; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "--XyZ\r\n\r\nx\r\n");
    n += (size_t)snprintf(big + n, sizeof big - n, "--XyZ--");
    CHECK_EQ_INT(run("XyZ", big, n, 0, 0, &s, err, sizeof err), -1);
    CHECK(strstr(err, "more than 64 parts") != NULL);

    /* A header line over the cap. */
    n = (size_t)snprintf(big, sizeof big, "--XyZ\r\nX: ");
    memset(big + n, 'a', FS_MULTIPART_LINE_MAX);
    n += FS_MULTIPART_LINE_MAX;
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n\r\n\r\n--XyZ--");
    CHECK_EQ_INT(run("XyZ", big, n, 0, 0, &s, err, sizeof err), -1);
    CHECK(strstr(err, "longer than 1024") != NULL);

    /* Body bytes with NULs and near-boundaries pass through unchanged. */
    static const char bin[] = "--XyZ\r\n\r\n\0\r\n--X\0\r\n--XyY\r\n--XyZ--";
    CHECK_EQ_INT(run("XyZ", bin, sizeof bin - 1, 1, 0, &s, err, sizeof err), 0);
    CHECK_EQ_INT(s.data_bytes, 14);
    CHECK(memcmp(s.text, "[||]\0\r\n--X\0\r\n--XyY;", 19) == 0);
}

int main(void)
{
    test_cases();
    test_boundary_header();
    test_stop_and_limits();
    return CHECK_DONE();
}
