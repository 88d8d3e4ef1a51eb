/*
 * bench_profile: what customer state costs. Fills an fs_profile_store with N customers
 * (realistic keys of about 40 bytes, name_1|name_2|street|post_code) and K events each,
 * in rounds (every customer's first event, then every customer's second, ...: each lookup
 * lands far from the previous one, as in a stream), and prints:
 *   - bytes per customer: fs_profile_store_bytes / count, and the process's resident-set
 *     growth (/proc/self/statm) over the fill divided by the count;
 *   - the update rate: events/s of CPU time for lookup + fs_profile_step, against a
 *     baseline measured in the same run (the same keys formatted and the same events
 *     stepped into one record, no store), and the difference per event;
 *   - the CPU: model name from /proc/cpuinfo and whether it has AVX-512 (avx512f).
 * One thread.
 *
 *   bench_profile [--customers N] [--events K]      (defaults 1000000 and 4)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fs_profile.h"
#include "fs_profile_store.h"

static const char *const first[] = {"James", "Mary",  "Robert", "Patricia", "John",
                                    "Jennifer", "Michael", "Linda", "William", "Elizabeth"};
static const char *const streets[] = {"Maple Avenue", "Oak Street", "Washington Boulevard",
                                      "Lakeview Drive", "Hillcrest Road", "Cedar Lane"};

/* The key of customer i: about 40 bytes. */
static int make_key(char *buf, size_t cap, uint64_t i)
{
    uint64_t h = i * 0x9E3779B97F4A7C15ULL;
    return snprintf(buf, cap, "%s|Surname%06" PRIu64 "|%u %s|%05u", first[h % 10], i,
                    (unsigned)(h >> 20) % 9000 + 100, streets[(h >> 40) % 6],
                    (unsigned)(h >> 8) % 99000 + 1000);
}

/* Event k of customer i: times a few hours apart, amounts and categories varied. */
static fs_profile_event make_event(uint64_t i, int k)
{
    uint64_t h = (i * 31 + (uint64_t)k) * 0x9E3779B97F4A7C15ULL;
    fs_profile_event e = {1546300800 + (int64_t)k * 7200 + (int64_t)(h >> 48),
                          (double)((h >> 20) % 50000) / 100.0, (int)((h >> 8) % 16)};
    return e;
}

int main(int argc, char **argv)
{
    size_t customers = 1000000;
    int events = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--customers") == 0 && i + 1 < argc)
            customers = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = (int)strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_profile [--customers N] [--events K]\n");
            return 2;
        }
    }
    if (customers == 0 || events < 1) {
        fprintf(stderr, "bench_profile: --customers and --events must be positive\n");
        return 2;
    }
    char model[256], key[128];
    int avx512;
    bench_cpu_info(model, sizeof model, &avx512);
    printf("cpu: %s (AVX-512: %s)\n", model, avx512 ? "yes" : "no");
    printf("customers: %zu, events each: %d, record: %d bytes\n", customers, events,
           FS_PROFILE_BYTES);

    /* Baseline: the keys formatted and the events stepped into one record, no store. */
    double x[FS_PROFILE_NFEATURES], sink = 0.0;
    size_t key_len_sum = 0;
    fs_profile one;
    fs_profile_init(&one);
    double t0 = bench_cpu_seconds();
    for (int k = 0; k < events; k++) {
        for (size_t i = 0; i < customers; i++) {
            int len = make_key(key, sizeof key, i);
            fs_profile_event e = make_event(i, k);
            key_len_sum += (size_t)len;
            fs_profile_step(&one, &e, x);
            sink += x[1];
        }
    }
    double base = bench_cpu_seconds() - t0;

    size_t rss0 = bench_rss_bytes();
    fs_profile_store *s = fs_profile_store_new(0);
    if (s == NULL) {
        fprintf(stderr, "bench_profile: out of memory\n");
        return 1;
    }
    double fill = 0.0;
    size_t rss1 = 0;
    t0 = bench_cpu_seconds();
    for (int k = 0; k < events; k++) {
        for (size_t i = 0; i < customers; i++) {
            int len = make_key(key, sizeof key, i);
            fs_profile *p = fs_profile_store_upsert(s, key, (size_t)len, NULL, NULL);
            if (p == NULL) {
                fprintf(stderr, "bench_profile: out of memory at customer %zu\n", i);
                fs_profile_store_free(s);
                return 1;
            }
            fs_profile_event e = make_event(i, k);
            fs_profile_step(p, &e, x);
            sink += x[1];
        }
        if (k == 0) {
            fill = bench_cpu_seconds() - t0;
            rss1 = bench_rss_bytes();
        }
    }
    double all = bench_cpu_seconds() - t0;
    size_t n = fs_profile_store_count(s), bytes = fs_profile_store_bytes(s);
    double nev = (double)customers * events;
    printf("key length: %.1f bytes on average\n", (double)key_len_sum / nev);
    double growth = (double)rss1 - (double)rss0; /* may be negative: size_t would wrap */
    printf("bytes per customer: %.1f (fs_profile_store_bytes %zu / %zu), RSS growth %.1f "
           "(%.1f MiB)\n",
           (double)bytes / (double)n, bytes, n, growth / (double)n, growth / 1048576.0);
    printf("first events (insert): %.0f events/s (%.3f s CPU)\n", (double)customers / fill,
           fill);
    printf("all events (store + step): %.0f events/s (%.3f s CPU)\n", nev / all, all);
    printf("baseline (keys + step, no store): %.0f events/s (%.3f s CPU)\n", nev / base, base);
    printf("store cost: %.0f ns per event (%.2fx the baseline's time)\n",
           (all - base) / nev * 1e9, all / base);
    printf("(checksum %g)\n", sink);
    fs_profile_store_free(s);
    return 0;
}
