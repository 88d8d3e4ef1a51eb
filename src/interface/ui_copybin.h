/*
 * ui_copybin: the rows of a binary COPY ... TO STDOUT (FORMAT binary) of
 * (upload_row int4, transaction_id text, score float8, fraud_flag int4), the download's
 * query, parsed one CopyData message at a time, and each row as a line of the scores CSV.
 * No libpq here: the caller hands over the bytes of each message (PQgetCopyData), so the
 * parser is tested and fuzzed on its own (tests/fuzz/fuzz_copybin.c).
 *
 * Ownership: a row's id points into the caller's message and lives as long as it does.
 */
#ifndef UI_COPYBIN_H
#define UI_COPYBIN_H

#include <stddef.h>
#include <stdint.h>

/* Longest transaction_id accepted (the mart's ids are at most 128 bytes, FS_TXN_ID_MAX). */
#define UI_COPYBIN_ID_MAX 512
/* Room for any CSV line ui_copybin_csv_line writes. */
#define UI_COPYBIN_LINE_MAX (2 * UI_COPYBIN_ID_MAX + 64)

typedef struct ui_copybin {
    int header_seen; /* the "PGCOPY\n\377\r\n\0" signature and header were read */
    int done;        /* the trailer (a field count of -1) was read */
} ui_copybin;

typedef struct ui_copybin_row {
    uint32_t row;
    const char *id;
    size_t id_len;
    double score; /* the stored IEEE double, bit for bit */
    int32_t flag;
} ui_copybin_row;

/* Reads the next row of msg[*pos..len) (the first message starts with the header). Returns
 * 1 with *out filled and *pos advanced, 0 at the end of the message or at the trailer
 * (st->done), -1 if the bytes are not such rows. */
int ui_copybin_next(ui_copybin *st, const unsigned char *msg, size_t len, size_t *pos,
                    ui_copybin_row *out);

/* Writes the row as "row,transaction_id,score,fraud_flag\n" (the id quoted when it holds a
 * comma, quote, CR or LF, as fraudctl score does; the score with %.17g). buf must hold
 * UI_COPYBIN_LINE_MAX bytes. Returns the line's length. */
size_t ui_copybin_csv_line(const ui_copybin_row *r, char *buf);

#endif
