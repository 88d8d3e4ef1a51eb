/*
 * ui_download: "Download scores (CSV)" of one upload, streamed from PostgreSQL. The rows
 * come from a binary COPY (SELECT upload_row, transaction_id, score, fraud_flag ... ORDER BY
 * upload_row) TO STDOUT on a connection of the download's own, read one COPY message at a
 * time inside libmicrohttpd's content callback, so the whole result is never held in memory
 * (the response is chunked; memory stays at one row plus the network buffers whatever the
 * upload's size). The score arrives as the stored IEEE double (binary COPY, no text round
 * trip) and is written with %.17g, the format of `fraudctl score`:
 *   row,transaction_id,score,fraud_flag
 *   0,3f0c...,0.0012345678901234567,0
 * row is the 0-based data row of the uploaded file (upload_row - 1), as `fraudctl score`
 * numbers it, so the two files are the same line for line. The page shows the same number.
 *
 * Ownership: the response owns the connection and frees it when libmicrohttpd is done with
 * the response (the end of the stream, or the client going away, which ends the COPY).
 */
#ifndef UI_DOWNLOAD_H
#define UI_DOWNLOAD_H

#include <microhttpd.h>
#include <stddef.h>

/* 1 if s is a 36-character lowercase or uppercase UUID text, else 0. */
int ui_uuid_valid(const char *s);

/* Downloads served at once (each holds a PostgreSQL connection until its stream ends). */
#define UI_DOWNLOAD_MAX 8

/* Opens a connection (conninfo and password as ui_db_new's), checks that the upload has
 * rows, starts the COPY and returns the response to queue (200, text/csv). NULL with
 * *status 404 (no scored row of this upload) or 503 (database, or UI_DOWNLOAD_MAX downloads
 * already in progress) and the reason in errstr. Rows of the upload stored without an
 * upload_row (a producer that sent only the upload_id header) are left out.
 * upload_id must pass ui_uuid_valid. */
struct MHD_Response *ui_download_scores(const char *conninfo, const char *password,
                                        const char *upload_id, unsigned *status,
                                        char *errstr, size_t errstr_size);

#endif
