/*
 * ui_assets: the page's static files (web/), embedded into the binary at build time by
 * embed_assets.cmake, so the image and the binary need no WEB_DIR. Setting WEB_DIR serves
 * the files from disk instead (for editing the page without rebuilding).
 */
#ifndef UI_ASSETS_H
#define UI_ASSETS_H

#include <stddef.h>

typedef struct ui_asset {
    const char *path; /* "/index.html", "/app.js", ... */
    const unsigned char *data;
    size_t len;
} ui_asset;

/* The generated table, ended by an entry with a NULL path. */
extern const ui_asset ui_embedded_assets[];

/* The embedded asset for a request path ("/" means "/index.html"), or NULL. Static data. */
const ui_asset *ui_asset_find(const char *path);

/* Content type for a file name by its extension (application/octet-stream if unknown). */
const char *ui_asset_type(const char *name);

#endif
