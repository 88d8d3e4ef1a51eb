/*
 * fs_csv_map: header row -> column indices, every missing column named.
 */
#include "fs_csv_map.h"
#include "fs_err.h"

#include <stdio.h>
#include <string.h>

/* Bytes of a duplicated header name quoted in a message. */
#define NAME_EXCERPT 40

/* Appends s to buf[*len..size) if it fits whole; returns 0, or -1 (nothing written). */
static int append(char *buf, size_t size, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > size)
        return -1;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return 0;
}


/* The message naming every missing column: 'missing column "a"', or
 * 'missing column "a" and 2 more: "b", "c"' (the first one leads so a reader scanning for
 * one name finds it; the count is exact even when why is too small and the list ends with
 * ", ..."). */
static void missing_message(const fs_csv_map_column *wanted, size_t n, const int *index,
                            size_t nmissing, char *why, size_t why_size)
{
    size_t len = 0, listed = 0;
    if (why_size == 0)
        return;
    why[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!wanted[i].required || index[i] >= 0)
            continue;
        char item[160];
        if (listed == 0 && nmissing == 1)
            snprintf(item, sizeof item, "missing column \"%.100s\"", wanted[i].name);
        else if (listed == 0)
            snprintf(item, sizeof item, "missing column \"%.100s\" and %zu more: ",
                     wanted[i].name, nmissing - 1);
        else
            snprintf(item, sizeof item, "%s\"%.100s\"", listed > 1 ? ", " : "",
                     wanted[i].name);
        /* Room kept for ", ..." and the NUL. */
        if (len + strlen(item) + 6 > why_size) {
            append(why, why_size, &len, listed > 1 ? ", ..." : "...");
            break;
        }
        append(why, why_size, &len, item);
        listed++;
    }
}

int fs_csv_map_header(const fs_csv_row *header, const fs_csv_map_column *wanted, size_t n,
                      int *index, fs_csv_map_result *res, char *why, size_t why_size)
{
    fs_csv_map_result r = {0, 0};
    for (size_t i = 0; i < n; i++)
        index[i] = -1;
    for (size_t c = 0; c < header->nfields; c++) {
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(wanted[i].name);
            if (header->lens[c] != len || memcmp(header->fields[c], wanted[i].name, len) != 0)
                continue;
            if (index[i] >= 0) {
                if (r.duplicate == 0)
                    r.duplicate = c + 1;
            } else {
                index[i] = (int)c;
            }
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        r.nmissing += wanted[i].required && index[i] < 0;
    if (res != NULL)
        *res = r;
    if (r.duplicate > 0) {
        char ex[NAME_EXCERPT * 4 + 8];
        size_t c = r.duplicate - 1;
        fs_excerpt(ex, sizeof ex, header->fields[c], header->lens[c], NAME_EXCERPT);
        fs_errf(why, why_size, "column \"%s\" appears twice", ex);
        return -1;
    }
    if (r.nmissing > 0) {
        missing_message(wanted, n, index, r.nmissing, why, why_size);
        return -1;
    }
    return 0;
}
