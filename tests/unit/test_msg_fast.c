/* fs_msg's fast paths against its jansson reference paths. Transactions: whenever the fast
 * path accepts a message, the reference must accept it too and build the same record
 * (numbers compared as bits, strings byte for byte); and the public fs_msg_parse_transaction
 * must give the reference's result on every input, error text included. Scoring: the same
 * for fs_msg_parse_scoring. Inputs: generated messages (data/msg_generated.jsonl, written by
 * the streaming suite's Python message builder from `fraudctl generate` rows), the same
 * records re-encoded by fs_msg_format_transaction, scoring messages formatted for them,
 * hand-written edge cases, and seeded random mutations of each generated message (500 for a
 * transactions message, 200 for a scoring one). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_msg.h"
#include "scoring_same.h"
#include "txn_same.h"

#define MAX_MSG 8192
#define MESSAGES "data/msg_generated.jsonl"

static unsigned long fast_accepted, compared, mutated_accepted, sc_fast, sc_mutated_fast;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static fs_txn fast_rec, ref_rec, pub_rec;

/* The public entry point gives the reference's answer: same return, same record or the
 * same error text. */
static void check_public(const char *msg, size_t len, const char *what)
{
    char e1[512] = "", e2[512] = "";
    int r1 = fs_msg_parse_transaction_ref(msg, len, &ref_rec, e1, sizeof e1);
    int r2 = fs_msg_parse_transaction(msg, len, &pub_rec, e2, sizeof e2);
    if (r1 != r2 || (r1 != 0 && strcmp(e1, e2) != 0) ||
        (r1 == 0 && !txn_same(&ref_rec, &pub_rec))) {
        fprintf(stderr, "%s: public parser differs from the reference (%d '%s' / %d '%s'): "
                "%.*s\n", what, r1, e1, r2, e2, (int)len, msg);
        CHECK(0);
    }
}

/* Checks the contract on one message; returns 1 if the fast path took it. */
static int check_one(const char *msg, size_t len, const char *what)
{
    char err[512];
    check_public(msg, len, what);
    if (!fs_msg_parse_transaction_fast(msg, len, &fast_rec))
        return 0;
    fast_accepted++;
    int ref = fs_msg_parse_transaction_ref(msg, len, &ref_rec, err, sizeof err);
    if (ref != 0) {
        fprintf(stderr, "%s: fast path accepted what fs_msg refuses (%s): %.*s\n", what, err,
                (int)len, msg);
        CHECK(ref == 0);
        return 1;
    }
    compared++;
    if (!txn_same(&fast_rec, &ref_rec)) {
        fprintf(stderr, "%s: records differ: %.*s\n", what, (int)len, msg);
        CHECK(0);
    }
    return 1;
}

/* The same for a scoring message; returns 1 if the fast path took it. */
static int check_scoring(const char *msg, size_t len, const char *what)
{
    static fs_scoring_msg a, b, c;
    char e1[512] = "", e2[512] = "";
    int r1 = fs_msg_parse_scoring_ref(msg, len, &a, e1, sizeof e1);
    int r2 = fs_msg_parse_scoring(msg, len, &b, e2, sizeof e2);
    if (r1 != r2 || (r1 != 0 && strcmp(e1, e2) != 0) ||
        (r1 == 0 && !scoring_same(&a, &b))) {
        fprintf(stderr, "%s: public scoring parser differs from the reference (%d '%s' / "
                "%d '%s'): %.*s\n", what, r1, e1, r2, e2, (int)len, msg);
        CHECK(0);
    }
    if (!fs_msg_parse_scoring_fast(msg, len, &c))
        return 0;
    sc_fast++;
    if (r1 != 0 || !scoring_same(&a, &c)) {
        fprintf(stderr, "%s: scoring fast path differs from the reference (%s): %.*s\n", what,
                e1, (int)len, msg);
        CHECK(0);
    }
    return 1;
}

static void mutate(char *buf, size_t *len)
{
    static const char alphabet[] = "{}[]\":,.-+eE0123456789 \t\nnul\\tfa\x01\xc3\xa9x";
    size_t n = *len;
    int edits = 1 + (int)(rnd() % 3);
    for (int e = 0; e < edits && n > 0; e++) {
        size_t at = (size_t)(rnd() % n);
        char ch = alphabet[rnd() % (sizeof alphabet - 1)];
        switch (rnd() % 4) {
        case 0: buf[at] = ch; break;
        case 1:
            if (n + 1 < MAX_MSG) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = ch;
                n++;
            }
            break;
        case 2:
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
            break;
        default: { /* copy a chunk elsewhere: duplicate keys, repeated values */
            size_t from = (size_t)(rnd() % n), span = 1 + (size_t)(rnd() % 40);
            if (from + span > n)
                span = n - from;
            char chunk[40];
            if (n + span < MAX_MSG) {
                memcpy(chunk, buf + from, span);
                memmove(buf + at + span, buf + at, n - at);
                memcpy(buf + at, chunk, span);
                n += span;
            }
        }
        }
    }
    *len = n;
}

static void test_generated(void)
{
    FILE *f = fopen(MESSAGES, "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    static char line[MAX_MSG], buf[MAX_MSG];
    static char sc[FS_MSG_SCORING_MAX];
    int lines = 0, taken = 0, sc_taken = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, "\n");
        lines++;
        taken += check_one(line, len, "generated");
        /* The same record as the C codec writes it (post codes as integers, ...). */
        char err[256];
        if (fs_msg_parse_transaction(line, len, &ref_rec, err, sizeof err) == 0) {
            int n = fs_msg_format_transaction(buf, sizeof buf, ref_rec.transaction_id, &ref_rec);
            CHECK(n > 0);
            if (n > 0)
                CHECK(check_one(buf, (size_t)n, "re-encoded"));
            /* A scoring message for it, as the detector writes one, and its mutations. */
            double score = (double)(lines * 7919 % 10007) / 10007.0;
            fs_scoring_txn block;
            fs_scoring_txn_of_record(&block, &ref_rec);
            char rs[512];
            const fs_reason top[] = {{"cust_n_1h", (double)(lines % 9), score - 0.5},
                                     {"amount_z", lines % 5 ? score * 3 : NAN, -score}};
            CHECK(fs_msg_format_reasons(rs, sizeof rs, -7.25, top, 2) > 0);
            int k = fs_msg_format_scoring_full(sc, sizeof sc, ref_rec.transaction_id, score,
                                               lines % 2, &block, lines % 2 ? rs : NULL);
            CHECK(k > 0);
            if (k > 0) {
                sc_taken += check_scoring(sc, (size_t)k, "scoring");
                for (int m = 0; m < 200; m++) {
                    size_t kn = (size_t)k;
                    memcpy(buf, sc, kn);
                    mutate(buf, &kn);
                    sc_mutated_fast += (unsigned long)check_scoring(buf, kn, "scoring mutated");
                }
            }
        }
        for (int m = 0; m < 500; m++) {
            size_t n = len;
            memcpy(buf, line, len);
            mutate(buf, &n);
            mutated_accepted += (unsigned long)check_one(buf, n, "mutated");
        }
    }
    fclose(f);
    CHECK(lines >= 100);
    /* The fast path must really be the common path. */
    CHECK_EQ_INT(taken, lines);
    CHECK_EQ_INT(sc_taken, lines);
}

static void test_edges(void)
{
    static const char *const base =
        "{\"transaction_id\":\"e-1\",\"data\":{\"transaction_time\":\"2019-03-04 05:06\","
        "\"merch\":\"m\",\"cat_id\":\"travel\",\"amount\":%s,\"name_1\":\"A\",\"name_2\":\"B\","
        "\"gender\":\"F\",\"street\":\"1 St\",\"one_city\":\"X\",\"us_state\":\"NY\","
        "\"post_code\":10001,\"lat\":%s,\"lon\":-73.9,\"population_city\":100,\"jobs\":\"j\","
        "\"merchant_lat\":40.1,\"merchant_lon\":-74.0%s}}";
    static const char *const cases[][3] = {
        {"12.5", "40.7", ""},          {"0", "40.7", ""},
        {"-0", "40.7", ""},            {"-0.0", "40.7", ""},
        {"1e2", "40.7", ""},           {"012", "40.7", ""},
        {"\"12.5\"", "40.7", ""},      {"\"nan\"", "40.7", ""},
        {"null", "null", ""},          {"\"\"", "40.7", ""},
        {"123456789012345", "40.7", ""}, {"1234567890123456", "40.7", ""},
        {"99999999999999999999", "40.7", ""}, {"12.", "40.7", ""},
        {"12.5", "91", ""},            {"12.5", "40.7", ",\"target\":1"},
        {"12.5", "40.7", ",\"amount\":3"}, {"12.5", "40.7", ",\"extra\":3"},
        {"true", "40.7", ""},          {"12.5", "\"40.7x\"", ""},
        {"-12.5", "-0.5", ""},         {"1.7976931348623157", "40.7", ""},
    };
    char buf[2048];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = snprintf(buf, sizeof buf, base, cases[i][0], cases[i][1], cases[i][2]);
        check_one(buf, (size_t)n, "edge");
    }
    /* Shapes the fast path must leave alone but the reference accepts or refuses. */
    static const char *const others[] = {
        "", "{}", "[]", "null", "{\"transaction_id\":\"x\"}", "{\"data\":{}}",
        "{\"transaction_id\":\"x\",\"data\":null}",
        "{\"transaction_id\":\"x\",\"data\":{}}",
        "{\"transaction_id\":\"x\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\"}}",
        "{\"transaction_id\":\"x\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\"}} x",
        " {\"transaction_id\" : \"x\" , \"data\" : { \"transaction_time\" : "
        "\"2019-01-01 00:00\" } } \n",
        "{\"transaction_id\":\"x\",\"transaction_id\":\"y\",\"data\":{\"transaction_time\":"
        "\"2019-01-01 00:00\"}}",
        "{\"transaction_id\":\"\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\"}}",
        "{\"transaction_id\":\"a\\u0062\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\"}}",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        check_one(others[i], strlen(others[i]), "shape");
    /* -0 and exponents go the slow way (documented), the common shapes the fast way. */
    CHECK(!fs_msg_parse_transaction_fast("{\"transaction_id\":\"x\",\"data\":{\"transaction_time\":"
                         "\"2019-01-01 00:00\",\"amount\":-0}}", 66, &fast_rec));
    const char *ok = "{\"transaction_id\":\"x\",\"data\":{\"transaction_time\":"
                     "\"2019-01-01 00:00\",\"amount\":null}}";
    CHECK(fs_msg_parse_transaction_fast(ok, strlen(ok), &fast_rec));

    /* Text near the record's capacity: long strings, accepted or refused alike. */
    static char big[FS_TXN_TEXT_MAX + 512];
    for (int extra = -8; extra <= 8; extra++) {
        int fill = FS_TXN_TEXT_MAX - 40 + extra;
        int n = snprintf(big, sizeof big,
                         "{\"transaction_id\":\"%s\",\"data\":{\"transaction_time\":"
                         "\"2019-01-01 00:00\",\"street\":\"%*s\"}}",
                         "0123456789012345678901234567890123456789", fill, "s");
        check_one(big, (size_t)n, "long");
    }
}

static void test_scoring_edges(void)
{
    static const char *const scores[] = {
        "0", "1", "-0", "0.0", "-0.0", "1.0", "0.5", "1e-3", "1E-3", "5e-1", "1e0", "1e+0",
        "0.95000000000000007", "1.0000000000000002", "1e-400", "1e400", "-1e-400", "2", "-1",
        "00", "01", ".5", "1.", "0.5e", "+0.5", "0x1", "nan", "\"0.5\"", "null", "true",
        "0.123456789012345678901234567890123", "0.1234567890123456789012345678901",
    };
    static const char *const flags[] = {"0", "1", "-0", "0.0", "1e0", "2", "01", "true",
                                        "null", "\"1\""};
    char buf[512];
    for (size_t i = 0; i < sizeof scores / sizeof scores[0]; i++)
        for (size_t j = 0; j < sizeof flags / sizeof flags[0]; j++) {
            int n = snprintf(buf, sizeof buf,
                             "{\"transaction_id\":\"s-1\",\"score\":%s,\"fraud_flag\":%s}",
                             scores[i], flags[j]);
            check_scoring(buf, (size_t)n, "scoring edge");
        }
    static const char *const shapes[] = {
        "", "{}", "[]", " { \"fraud_flag\" : 1 , \"score\" : 0.5 , \"transaction_id\" : "
        "\"x\" } \n",
        "{\"transaction_id\":\"x\",\"score\":0.5,\"fraud_flag\":1,\"extra\":2}",
        "{\"transaction_id\":\"x\",\"score\":0.5,\"score\":0.5,\"fraud_flag\":1}",
        "{\"transaction_id\":\"x\",\"score\":0.5}",
        "{\"transaction_id\":\"\",\"score\":0.5,\"fraud_flag\":1}",
        "{\"transaction_id\":\"a\\u0062\",\"score\":0.5,\"fraud_flag\":1}",
        "{\"transaction_id\":null,\"score\":0.5,\"fraud_flag\":1}",
        "{\"transaction_id\":\"x\",\"score\":0.5,\"fraud_flag\":1} x",
        "{\"transaction_id\":\"x\",\"score\":0.5,\"fraud_flag\":1,}",
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_scoring(shapes[i], strlen(shapes[i]), "scoring shape");
    /* An id at and over the cap. */
    char id[FS_TXN_ID_MAX + 2];
    for (int len = FS_TXN_ID_MAX - 1; len <= FS_TXN_ID_MAX + 1; len++) {
        memset(id, 'i', (size_t)len);
        id[len] = '\0';
        int n = snprintf(buf, sizeof buf,
                         "{\"transaction_id\":\"%s\",\"score\":0.25,\"fraud_flag\":0}", id);
        CHECK_EQ_INT(check_scoring(buf, (size_t)n, "scoring id"), len <= FS_TXN_ID_MAX);
    }
    /* The common shapes take the fast path. */
    const char *ok = "{\"transaction_id\":\"x\",\"score\":0.95000000000000007,"
                     "\"fraud_flag\":1}";
    fs_scoring_msg m;
    CHECK(fs_msg_parse_scoring_fast(ok, strlen(ok), &m));
    CHECK_EQ_INT(m.fraud_flag, 1);
    CHECK_EQ_BITS(m.score, 0.95000000000000007);
}

int main(void)
{
    test_edges();
    test_scoring_edges();
    test_generated();
    printf("transactions: fast path accepted %lu messages (%lu of them mutations); %lu "
           "compared with the reference\n",
           fast_accepted, mutated_accepted, compared);
    printf("scoring: fast path accepted %lu messages (%lu of them mutations)\n", sc_fast,
           sc_mutated_fast);
    CHECK(mutated_accepted > 0);
    CHECK(sc_mutated_fast > 0);
    return CHECK_DONE();
}
