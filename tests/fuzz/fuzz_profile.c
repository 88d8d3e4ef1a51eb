/*
 * libFuzzer harness for the customer record (fs_profile):
 *  (a) the input as a changelog value: fs_profile_decode never crashes, and a record it
 *      accepts encodes back to the very same bytes;
 *  (b) the input as a sequence of 6-byte events (time steps that go back or jump by years
 *      within fs_txn's years 1..9999, amounts 0, tiny, huge, NaN, negative, infinite,
 *      categories out of range) applied to an empty record, and to the record decoded from
 *      the first 129 bytes when they decode: every feature is finite, fs_profile_features
 *      gives the bits fs_profile_step gives, and after every event the record encodes to
 *      bytes fs_profile_decode accepts and that re-encode unchanged.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TIME_MIN (-62135596800LL) /* 0001-01-01 00:00:00 */
#define TIME_MAX 253402300799LL   /* 9999-12-31 23:59:59 */
#define YEAR (365LL * 86400)

static void must(int ok)
{
    if (!ok)
        abort();
}

static void check_roundtrip(const fs_profile *p)
{
    unsigned char w[FS_PROFILE_WIRE_BYTES], w2[FS_PROFILE_WIRE_BYTES];
    fs_profile q;
    fs_profile_encode(p, w);
    must(fs_profile_decode(&q, w, sizeof w, NULL, 0) == 0);
    must(memcmp(&q, p, sizeof q) == 0);
    fs_profile_encode(&q, w2);
    must(memcmp(w, w2, sizeof w) == 0);
}

static int64_t clamp_time(int64_t t)
{
    return t < TIME_MIN ? TIME_MIN : t > TIME_MAX ? TIME_MAX : t;
}

static double amount_of(uint8_t kind, uint16_t mag)
{
    switch (kind % 12) {
    case 0: return 0.0;
    case 1: return 5e-324 * mag;            /* subnormal */
    case 2: return 1e-300 * mag;
    case 3: return 1e300;
    case 4: return (double)mag * 0.37;
    case 5: return NAN;
    case 6: return -(double)mag;
    case 7: return INFINITY;
    case 8: return -INFINITY;
    case 9: return DBL_MAX;
    case 10: return 1e12 + mag;
    default: return exp((double)mag / 2000.0) - 1.0;
    }
}

/* Applies the events of data to p starting at time t. */
static void run_events(fs_profile *p, int64_t t, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 6 <= size; i += 6) {
        const uint8_t *b = data + i;
        uint16_t mag = (uint16_t)(b[1] | b[2] << 8);
        switch (b[0] % 9) {
        case 0: break;
        case 1: t += mag; break;
        case 2: t -= mag; break;
        case 3: t += (int64_t)mag * 3600; break;
        case 4: t -= (int64_t)mag * 3600; break;
        case 5: t += (int64_t)(mag % 200) * YEAR; break;
        case 6: t -= (int64_t)(mag % 200) * YEAR; break;
        case 7: t = (mag & 1) ? TIME_MAX : TIME_MIN; break;
        default: t += (int64_t)mag * 86400; break;
        }
        t = clamp_time(t);
        fs_profile_event e = {t, amount_of(b[3], mag), (int8_t)b[5]};
        if ((b[4] & 1) && fs_profile_expired(p, t, (int64_t)(b[4] >> 1) * 86400))
            fs_profile_init(p); /* what fs_features_customer does */
        double x[FS_PROFILE_NFEATURES], y[FS_PROFILE_NFEATURES];
        fs_profile before = *p;
        fs_profile_features(p, &e, y);
        must(memcmp(&before, p, sizeof before) == 0);
        fs_profile_step(p, &e, x);
        for (int k = 0; k < FS_PROFILE_NFEATURES; k++)
            must(isfinite(x[k]));
        must(memcmp(x, y, sizeof x) == 0);
        must(x[0] >= 0.0 || x[0] == -1.0); /* ages never negative */
        must(p->last_time >= before.last_time || before.n == 0);
        check_roundtrip(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fs_profile p;
    char err[256];
    int decoded = fs_profile_decode(&p, data, size, err, sizeof err) == 0;
    if (decoded) {
        unsigned char w[FS_PROFILE_WIRE_BYTES];
        fs_profile_encode(&p, w);
        must(size == sizeof w && memcmp(w, data, sizeof w) == 0);
    }
    fs_profile_init(&p);
    run_events(&p, 1546300800, data, size);
    if (size >= FS_PROFILE_WIRE_BYTES &&
        fs_profile_decode(&p, data, FS_PROFILE_WIRE_BYTES, err, sizeof err) == 0)
        run_events(&p, clamp_time(p.last_time), data + FS_PROFILE_WIRE_BYTES,
                   size - FS_PROFILE_WIRE_BYTES);
    return 0;
}
