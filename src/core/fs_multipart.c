/*
 * Streaming multipart/form-data parser. The body is scanned for the delimiter
 * "\r\n--<boundary>"; the parser pretends the body starts right after a CRLF so that a
 * boundary on the very first line matches the same way. Because a valid boundary never
 * contains CR, a mismatch inside a partial delimiter match can only restart at the current
 * byte, so the held-back bytes are always a known prefix of the delimiter and no input
 * needs to be buffered.
 */
#include "fs_multipart.h"
#include "fs_err.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mp_state {
    MP_PREAMBLE,
    MP_TAIL,      /* after a delimiter: "--" or optional blanks then CRLF */
    MP_TAIL_DASH, /* saw one '-' after the delimiter */
    MP_TAIL_CR,   /* saw CR after the delimiter */
    MP_HEADERS,
    MP_HEADER_CR, /* saw CR inside a header line */
    MP_BODY,
    MP_END,   /* closing delimiter seen; the epilogue is ignored */
    MP_ERROR, /* malformed input or a callback stopped the parser */
};

struct fs_multipart {
    enum mp_state state;
    fs_multipart_callbacks cb;
    void *opaque;
    char delim[FS_MULTIPART_BOUNDARY_MAX + 5]; /* "\r\n--" boundary */
    size_t dlen;
    size_t match;  /* bytes of delim matched so far */
    size_t offset; /* body bytes consumed */
    size_t parts;
    size_t nheaders;
    int stop_rc; /* what the parser returns once stopped */
    char line[FS_MULTIPART_LINE_MAX + 1];
    size_t line_len;
    fs_multipart_part part;
    char err[256];
};

static int fail(fs_multipart *mp, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(mp->err, sizeof mp->err, "multipart body offset %zu: %s", mp->offset, msg);
    mp->state = MP_ERROR;
    mp->stop_rc = -1;
    return -1;
}

static int is_bchar(int c)
{
    return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

static int valid_boundary(const char *b, size_t len)
{
    if (len == 0 || len > FS_MULTIPART_BOUNDARY_MAX || b[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (b[i] == '\0' || !is_bchar((unsigned char)b[i]))
            return 0;
    return 1;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Reads a parameter value at s (token or quoted-string) into out; returns the position
 * after it, or NULL if malformed or longer than out_size - 1. */
static const char *read_param_value(const char *s, char *out, size_t out_size)
{
    size_t n = 0;
    if (*s == '"') {
        s++;
        while (*s != '"') {
            if (*s == '\0')
                return NULL;
            if (*s == '\\' && s[1] != '\0')
                s++;
            if (n + 1 >= out_size)
                return NULL;
            out[n++] = *s++;
        }
        s++;
    } else {
        while (*s != '\0' && *s != ';' && *s != ' ' && *s != '\t') {
            if (n + 1 >= out_size)
                return NULL;
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return s;
}

/* Walks "; name=value" parameters after a media type or disposition type, calling
 * want(name) to pick where each goes. Returns 0 or -1 if malformed. */
typedef char *(*param_sink)(void *ctx, const char *name, size_t name_len, size_t *cap);

static int parse_params(const char *s, param_sink sink, void *ctx)
{
    for (;;) {
        s = skip_ws(s);
        if (*s == '\0')
            return 0;
        if (*s != ';')
            return -1;
        s = skip_ws(s + 1);
        if (*s == '\0')
            return 0; /* a trailing ';' is tolerated */
        const char *name = s;
        while (*s != '\0' && *s != '=' && *s != ';' && *s != ' ' && *s != '\t')
            s++;
        size_t name_len = (size_t)(s - name);
        s = skip_ws(s);
        if (*s != '=' || name_len == 0)
            return -1;
        s = skip_ws(s + 1);
        char scratch[FS_MULTIPART_LINE_MAX + 1];
        size_t cap = sizeof scratch;
        char *dst = sink(ctx, name, name_len, &cap);
        if (dst == NULL) {
            dst = scratch;
            cap = sizeof scratch;
        }
        s = read_param_value(s, dst, cap);
        if (s == NULL)
            return -1;
    }
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

struct boundary_ctx {
    char *out;
    size_t out_size;
    int found;
};

static char *boundary_sink(void *ctx, const char *name, size_t len, size_t *cap)
{
    struct boundary_ctx *b = ctx;
    if (!name_is(name, len, "boundary"))
        return NULL;
    b->found = 1;
    *cap = b->out_size;
    return b->out;
}

int fs_multipart_boundary(const char *content_type, char *out, size_t out_size, char *errstr,
                          size_t errstr_size)
{
    static const char want[] = "multipart/form-data";
    if (content_type == NULL) {
        fs_errf(errstr, errstr_size, "no Content-Type; expected %s", want);
        return -1;
    }
    const char *s = skip_ws(content_type);
    size_t wlen = sizeof want - 1;
    if (strncasecmp(s, want, wlen) != 0 ||
        (s[wlen] != '\0' && s[wlen] != ';' && s[wlen] != ' ' && s[wlen] != '\t')) {
        fs_errf(errstr, errstr_size, "Content-Type is not %s", want);
        return -1;
    }
    struct boundary_ctx b = {out, out_size, 0};
    if (out_size == 0 || parse_params(s + wlen, boundary_sink, &b) != 0) {
        fs_errf(errstr, errstr_size, "Content-Type: malformed parameters");
        return -1;
    }
    if (!b.found) {
        fs_errf(errstr, errstr_size, "Content-Type: no boundary parameter");
        return -1;
    }
    if (!valid_boundary(out, strlen(out))) {
        fs_errf(errstr, errstr_size, "Content-Type: boundary must be 1..%d characters of "
                "letters, digits and '()+_,-./:=? ", FS_MULTIPART_BOUNDARY_MAX);
        return -1;
    }
    return 0;
}

fs_multipart *fs_multipart_new(const char *boundary, const fs_multipart_callbacks *cb,
                               void *opaque, char *errstr, size_t errstr_size)
{
    fs_multipart *mp = NULL;
    size_t blen = boundary != NULL ? strnlen(boundary, FS_MULTIPART_BOUNDARY_MAX + 1) : 0;
    if (boundary == NULL || !valid_boundary(boundary, blen)) {
        fs_errf(errstr, errstr_size, "invalid multipart boundary");
        goto out;
    }
    mp = calloc(1, sizeof *mp);
    if (mp == NULL) {
        fs_errf(errstr, errstr_size, "out of memory");
        goto out;
    }
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary, blen);
    mp->dlen = blen + 4;
    mp->match = 2; /* the body is treated as if preceded by CRLF */
    mp->state = MP_PREAMBLE;
    if (cb != NULL)
        mp->cb = *cb;
    mp->opaque = opaque;
out:
    return mp;
}

void fs_multipart_free(fs_multipart *mp)
{
    free(mp);
}

const char *fs_multipart_error(const fs_multipart *mp)
{
    return mp->err;
}

size_t fs_multipart_offset(const fs_multipart *mp)
{
    return mp->offset;
}

static int stopped(fs_multipart *mp, int rc)
{
    snprintf(mp->err, sizeof mp->err, "multipart body offset %zu: stopped by the consumer",
             mp->offset);
    mp->state = MP_ERROR;
    mp->stop_rc = rc;
    return rc;
}

static int emit(fs_multipart *mp, const void *data, size_t len)
{
    if (len == 0 || mp->cb.part_data == NULL)
        return 0;
    int rc = mp->cb.part_data(data, len, mp->opaque);
    return rc != 0 ? stopped(mp, rc) : 0;
}

struct disp_ctx {
    fs_multipart_part *part;
};

static char *disp_sink(void *ctx, const char *name, size_t len, size_t *cap)
{
    struct disp_ctx *d = ctx;
    if (name_is(name, len, "name")) {
        *cap = sizeof d->part->name;
        return d->part->name;
    }
    if (name_is(name, len, "filename")) {
        d->part->has_filename = 1;
        *cap = sizeof d->part->filename;
        return d->part->filename;
    }
    return NULL;
}

static char *ignore_sink(void *ctx, const char *name, size_t len, size_t *cap)
{
    (void)ctx;
    (void)name;
    (void)len;
    (void)cap;
    return NULL;
}

/* Parses one complete header line (without CRLF) of the current part. */
static int header_line(fs_multipart *mp)
{
    char *line = mp->line;
    line[mp->line_len] = '\0';
    if (memchr(line, '\0', mp->line_len) != NULL)
        return fail(mp, "NUL byte in a part header");
    if (line[0] == ' ' || line[0] == '\t')
        return fail(mp, "folded part header lines are not supported");
    if (++mp->nheaders > FS_MULTIPART_HEADERS_MAX)
        return fail(mp, "more than %d part header lines", FS_MULTIPART_HEADERS_MAX);
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line)
        return fail(mp, "part header line without a name and ':'");
    size_t name_len = (size_t)(colon - line);
    const char *value = skip_ws(colon + 1);
    if (name_is(line, name_len, "Content-Disposition")) {
        static const char fd[] = "form-data";
        if (strncasecmp(value, fd, sizeof fd - 1) != 0)
            return fail(mp, "Content-Disposition is not form-data");
        struct disp_ctx d = {&mp->part};
        if (parse_params(value + sizeof fd - 1, disp_sink, &d) != 0)
            return fail(mp, "malformed Content-Disposition parameters");
    } else if (name_is(line, name_len, "Content-Type")) {
        size_t n = 0;
        while (value[n] != '\0' && value[n] != ';' && value[n] != ' ' && value[n] != '\t')
            n++;
        if (n == 0 || n >= sizeof mp->part.content_type)
            return fail(mp, "part Content-Type empty or too long");
        for (size_t i = 0; i < n; i++)
            mp->part.content_type[i] = (char)tolower((unsigned char)value[i]);
        mp->part.content_type[n] = '\0';
        if (parse_params(value + n, ignore_sink, NULL) != 0)
            return fail(mp, "malformed part Content-Type parameters");
    }
    return 0;
}

static int begin_part(fs_multipart *mp)
{
    if (mp->parts >= FS_MULTIPART_PARTS_MAX)
        return fail(mp, "more than %d parts", FS_MULTIPART_PARTS_MAX);
    memset(&mp->part, 0, sizeof mp->part);
    mp->part.index = mp->parts++;
    mp->nheaders = 0;
    mp->line_len = 0;
    mp->state = MP_HEADERS;
    return 0;
}

int fs_multipart_feed(fs_multipart *mp, const void *data, size_t len)
{
    const char *p = data;
    size_t i = 0;
    int rc;
    if (mp->state == MP_ERROR)
        return mp->stop_rc;
    while (i < len) {
        switch (mp->state) {
        case MP_PREAMBLE:
        case MP_BODY: {
            int body = mp->state == MP_BODY;
            if (mp->match == 0) {
                const char *cr = memchr(p + i, '\r', len - i);
                size_t run = cr != NULL ? (size_t)(cr - (p + i)) : len - i;
                if (body && (rc = emit(mp, p + i, run)) != 0)
                    return rc;
                i += run;
                mp->offset += run;
                if (cr == NULL)
                    break;
                mp->match = 1;
                i++;
                mp->offset++;
                break;
            }
            if (p[i] == mp->delim[mp->match]) {
                mp->match++;
                i++;
                mp->offset++;
                if (mp->match == mp->dlen) {
                    mp->match = 0;
                    if (body && mp->cb.part_end != NULL && (rc = mp->cb.part_end(mp->opaque)) != 0)
                        return stopped(mp, rc);
                    mp->state = MP_TAIL;
                }
                break;
            }
            /* Mismatch: the held-back bytes were data; re-examine p[i] from scratch. */
            if (body && (rc = emit(mp, mp->delim, mp->match)) != 0)
                return rc;
            mp->match = 0;
            break;
        }
        case MP_TAIL:
            if (p[i] == '-')
                mp->state = MP_TAIL_DASH;
            else if (p[i] == '\r')
                mp->state = MP_TAIL_CR;
            else if (p[i] != ' ' && p[i] != '\t')
                return fail(mp, "expected CRLF or \"--\" after a boundary");
            i++;
            mp->offset++;
            break;
        case MP_TAIL_DASH:
            if (p[i] != '-')
                return fail(mp, "expected \"--\" after a boundary");
            i++;
            mp->offset++;
            mp->state = MP_END;
            break;
        case MP_TAIL_CR:
            if (p[i] != '\n')
                return fail(mp, "expected LF after CR after a boundary");
            i++;
            mp->offset++;
            if ((rc = begin_part(mp)) != 0)
                return rc;
            break;
        case MP_HEADERS:
            if (p[i] == '\r') {
                mp->state = MP_HEADER_CR;
            } else if (p[i] == '\n') {
                return fail(mp, "bare LF in part headers (CRLF expected)");
            } else {
                if (mp->line_len >= FS_MULTIPART_LINE_MAX)
                    return fail(mp, "part header line longer than %d bytes",
                                FS_MULTIPART_LINE_MAX);
                mp->line[mp->line_len++] = p[i];
            }
            i++;
            mp->offset++;
            break;
        case MP_HEADER_CR:
            if (p[i] != '\n')
                return fail(mp, "CR without LF in part headers");
            i++;
            mp->offset++;
            if (mp->line_len == 0) {
                mp->state = MP_BODY;
                mp->match = 0;
                if (mp->cb.part_begin != NULL &&
                    (rc = mp->cb.part_begin(&mp->part, mp->opaque)) != 0)
                    return stopped(mp, rc);
                break;
            }
            if ((rc = header_line(mp)) != 0)
                return rc;
            mp->line_len = 0;
            mp->state = MP_HEADERS;
            break;
        case MP_END:
            mp->offset += len - i;
            i = len;
            break;
        case MP_ERROR:
            return mp->stop_rc;
        }
    }
    return 0;
}

int fs_multipart_finish(fs_multipart *mp)
{
    switch (mp->state) {
    case MP_END:
        return 0;
    case MP_ERROR:
        return mp->stop_rc;
    case MP_PREAMBLE:
        return fail(mp, "no boundary found in the body");
    default:
        return fail(mp, "body ended before the closing boundary");
    }
}
