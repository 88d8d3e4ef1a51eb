/*
 * fs_msg: both message kinds, round trips (scores bit for bit), strict types, ids, buffer
 * sizes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fs_msg.h"
#include "scoring_same.h"

/* jansson's own messages go on with position details that vary between versions: compare
 * the part we write and the start of jansson's text. */
#define CHECK_PREFIX(got, want)                                                          \
    do {                                                                                 \
        const char *g_ = (got), *w_ = (want);                                            \
        CHECK(strncmp(g_, w_, strlen(w_)) == 0);                                         \
        if (strncmp(g_, w_, strlen(w_)) != 0)                                            \
            fprintf(stderr, "  got \"%s\", want prefix \"%s\"\n", g_, w_);              \
    } while (0)

/* A tiny deterministic generator for the score round trip (splitmix64). */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void test_scoring(void)
{
    char buf[512], err[256];
    fs_scoring_msg m;
    int n = fs_msg_format_scoring(buf, sizeof buf, "id-1", 0.5, 1);
    CHECK_EQ_STR(buf, "{\"transaction_id\":\"id-1\",\"score\":0.5,\"fraud_flag\":1}");
    CHECK_EQ_INT(n, (int)strlen(buf));
    CHECK_EQ_INT(fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err), 0);
    CHECK_EQ_STR(m.transaction_id, "id-1");
    CHECK_EQ_BITS(m.score, 0.5);
    CHECK_EQ_INT(m.fraud_flag, 1);

    /* Round trip bit for bit over many doubles in [0, 1], incl. subnormals and edges. */
    uint64_t s = 42;
    int mismatches = 0;
    for (int i = 0; i < 20000; i++) {
        double x;
        uint64_t r = mix(&s);
        if (i % 3 == 0) {
            x = (double)(r >> 11) / 9007199254740992.0;
        } else {
            uint64_t bits = r & 0x3FEFFFFFFFFFFFFFull; /* exponents below 1.0 */
            memcpy(&x, &bits, sizeof x);
        }
        if (i == 0)
            x = 0.0;
        if (i == 1)
            x = 1.0;
        if (i == 2)
            x = 4.9406564584124654e-324;
        if (i == 3)
            x = nextafter(1.0, 0.0);
        n = fs_msg_format_scoring(buf, sizeof buf, "x", x, 0);
        if (n < 0 || fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err) != 0 ||
            memcmp(&m.score, &x, sizeof x) != 0)
            mismatches++;
    }
    CHECK_EQ_INT(mismatches, 0);

    /* A negative zero score is written and read as 0 (fuzz finding). */
    n = fs_msg_format_scoring(buf, sizeof buf, "z", -0.0, 0);
    CHECK_EQ_STR(buf, "{\"transaction_id\":\"z\",\"score\":0,\"fraud_flag\":0}");
    static const char negz[] = "{\"transaction_id\":\"z\",\"score\":-0.0,\"fraud_flag\":0}";
    CHECK_EQ_INT(fs_msg_parse_scoring(negz, sizeof negz - 1, &m, err, sizeof err), 0);
    CHECK_EQ_BITS(m.score, 0.0);

    /* Ids with quotes and backslashes are escaped. */
    n = fs_msg_format_scoring(buf, sizeof buf, "a\"b\\c", 0.25, 0);
    CHECK(n > 0);
    CHECK_EQ_STR(buf, "{\"transaction_id\":\"a\\\"b\\\\c\",\"score\":0.25,\"fraud_flag\":0}");
    CHECK_EQ_INT(fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err), 0);
    CHECK_EQ_STR(m.transaction_id, "a\"b\\c");

    /* Format refusals and buffer sizes. */
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, "", 0.5, 0), -1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, "a\nb", 0.5, 0), -1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, "a", NAN, 0), -1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, "a", 1.5, 0), -1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, "a", 0.5, 2), -1);
    n = fs_msg_format_scoring(buf, sizeof buf, "abc", 0.125, 1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, (size_t)n, "abc", 0.125, 1), -1);
    CHECK_EQ_INT(fs_msg_format_scoring(buf, (size_t)n + 1, "abc", 0.125, 1), n);
    char id[FS_TXN_ID_MAX + 2];
    memset(id, '"', sizeof id);
    id[FS_TXN_ID_MAX] = '\0';
    CHECK(fs_msg_format_scoring(buf, FS_MSG_SCORING_MAX, id, nextafter(0.0, 1.0), 1) > 0);
    id[FS_TXN_ID_MAX] = 'x';
    id[FS_TXN_ID_MAX + 1] = '\0';
    CHECK_EQ_INT(fs_msg_format_scoring(buf, sizeof buf, id, 0.5, 1), -1);

    /* Parse errors. */
    static const struct {
        const char *in, *want;
    } bad[] = {
        {"", "not JSON: '[' or '{' expected"},
        {"[1]", "not JSON: expected an object"},
        {"{\"score\":0.5,\"fraud_flag\":0}", "missing transaction_id"},
        {"{\"transaction_id\":7,\"score\":0.5,\"fraud_flag\":0}",
         "transaction_id: expected a string"},
        {"{\"transaction_id\":\"\",\"score\":0.5,\"fraud_flag\":0}",
         "transaction_id: expected 1..128 printable ASCII characters"},
        {"{\"transaction_id\":\"\\u00e9\",\"score\":0.5,\"fraud_flag\":0}",
         "transaction_id: expected 1..128 printable ASCII characters"},
        {"{\"transaction_id\":\"a\",\"fraud_flag\":0}", "missing score"},
        {"{\"transaction_id\":\"a\",\"score\":\"0.5\",\"fraud_flag\":0}",
         "score: expected a number"},
        {"{\"transaction_id\":\"a\",\"score\":1.5,\"fraud_flag\":0}",
         "score: 1.5 outside [0, 1]"},
        {"{\"transaction_id\":\"a\",\"score\":-0.1,\"fraud_flag\":0}",
         "score: -0.10000000000000001 outside [0, 1]"},
        {"{\"transaction_id\":\"a\",\"score\":0.5}", "missing fraud_flag"},
        {"{\"transaction_id\":\"a\",\"score\":0.5,\"fraud_flag\":true}",
         "fraud_flag: expected 0 or 1"},
        {"{\"transaction_id\":\"a\",\"score\":0.5,\"fraud_flag\":1.0}",
         "fraud_flag: expected 0 or 1"},
        {"{\"transaction_id\":\"a\",\"score\":0.5,\"fraud_flag\":2}",
         "fraud_flag: expected 0 or 1"},
        {"{\"transaction_id\":\"a\",\"transaction_id\":\"b\",\"score\":0.5,\"fraud_flag\":1}",
         "not JSON: duplicate object key"},
        {"{\"transaction_id\":\"a\",\"score\":1e999,\"fraud_flag\":1}",
         "not JSON: real number overflow"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(fs_msg_parse_scoring(bad[i].in, strlen(bad[i].in), &m, err, sizeof err), -1);
        CHECK_PREFIX(err, bad[i].want);
    }
    /* Integer scores are numbers; unknown keys are ignored. */
    static const char ok[] = "{\"transaction_id\":\"a\",\"score\":1,\"fraud_flag\":1,\"x\":[]}";
    CHECK_EQ_INT(fs_msg_parse_scoring(ok, sizeof ok - 1, &m, err, sizeof err), 0);
    CHECK_EQ_BITS(m.score, 1.0);
    /* The length is honoured: no reading past it, no NUL needed. */
    static const char tail[] = "{\"transaction_id\":\"a\",\"score\":0,\"fraud_flag\":0}garbage";
    CHECK_EQ_INT(fs_msg_parse_scoring(tail, sizeof tail - 1 - 7, &m, err, sizeof err), 0);
}

/* The optional members: the transaction block as the detector writes it from a record, the
 * reasons, accessors, null markers, copies, limits and refusals. */
static void test_scoring_full(void)
{
    static char buf[FS_MSG_SCORING_MAX], rs[FS_MSG_REASONS_MAX + 1];
    static fs_scoring_msg m, copy, back;
    char err[256];
    static const char txn[] =
        "{\"transaction_id\":\"t-9\",\"data\":{"
        "\"transaction_time\":\"2019-01-01 00:00:18\",\"merch\":\"fraud_Rippin, Kub and Mann\","
        "\"cat_id\":\"misc_net\",\"amount\":4.97,\"name_1\":\"Jennifer\","
        "\"name_2\":\"\",\"gender\":\"F\",\"street\":\"561 Perry Cove\","
        "\"one_city\":\"Moravian Falls\",\"us_state\":\"NC\",\"post_code\":28654,"
        "\"lat\":36.0788,\"lon\":-81.1781,\"population_city\":3495,"
        "\"jobs\":\"Psychologist\",\"merchant_lat\":36.011293,\"merchant_lon\":-82.048315}}";
    static fs_txn t;
    CHECK_EQ_INT(fs_msg_parse_transaction(txn, sizeof txn - 1, &t, err, sizeof err), 0);
    fs_scoring_txn block;
    fs_scoring_txn_of_record(&block, &t);
    CHECK(block.str[FS_SC_NAME_2] == NULL); /* "" is missing: written as null */
    const fs_reason top[] = {{"cust_n_1h", 7, 2.31}, {"amount_z", NAN, -0.5}};
    int rn = fs_msg_format_reasons(rs, sizeof rs, -7.12, top, 2);
    CHECK_EQ_STR(rs, "{\"bias\":-7.12,\"top\":[{\"feature\":\"cust_n_1h\",\"value\":7,"
                     "\"contribution\":2.31},{\"feature\":\"amount_z\",\"value\":null,"
                     "\"contribution\":-0.5}]}");
    CHECK_EQ_INT(rn, (int)strlen(rs));
    int n = fs_msg_format_scoring_full(buf, sizeof buf, "t-9", 0.968, 1, &block, rs);
    CHECK_EQ_STR(buf,
                 "{\"transaction_id\":\"t-9\",\"score\":0.96799999999999997,\"fraud_flag\":1,"
                 "\"transaction\":{\"transaction_time\":\"2019-01-01 00:00:18\",\"amount\":4.97,"
                 "\"merch\":\"fraud_Rippin, Kub and Mann\",\"cat_id\":\"misc_net\","
                 "\"name_1\":\"Jennifer\",\"name_2\":null,\"one_city\":\"Moravian Falls\","
                 "\"us_state\":\"NC\"},\"reasons\":{\"bias\":-7.12,\"top\":[{\"feature\":"
                 "\"cust_n_1h\",\"value\":7,\"contribution\":2.31},{\"feature\":\"amount_z\","
                 "\"value\":null,\"contribution\":-0.5}]}}");
    CHECK_EQ_INT(n, (int)strlen(buf));
    CHECK(fs_msg_parse_scoring_fast(buf, (size_t)n, &m)); /* the detector's shape is fast */
    CHECK_EQ_INT(fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err), 0);
    CHECK_EQ_INT(m.has_transaction, 1);
    CHECK_EQ_STR(fs_scoring_str(&m, FS_SC_TRANSACTION_TIME), "2019-01-01 00:00:18");
    CHECK_EQ_STR(fs_scoring_str(&m, FS_SC_MERCH), "fraud_Rippin, Kub and Mann");
    CHECK_EQ_STR(fs_scoring_str(&m, FS_SC_US_STATE), "NC");
    CHECK_EQ_STR(fs_scoring_str(&m, FS_SC_NAME_2), "");
    CHECK_EQ_INT(fs_scoring_str_null(&m, FS_SC_NAME_2), 1);
    CHECK_EQ_INT(fs_scoring_str_null(&m, FS_SC_NAME_1), 0);
    CHECK_EQ_BITS(m.amount, 4.97);
    size_t rlen = 0;
    CHECK_EQ_STR(fs_scoring_reasons(&m, &rlen), rs);
    CHECK_EQ_INT(rlen, strlen(rs));
    CHECK_EQ_STR(fs_scoring_str_name(FS_SC_ONE_CITY), "one_city");
    CHECK(fs_scoring_str_name(FS_SC_NSTR) == NULL);
    /* A plain copy holds the same content (offsets, not pointers). */
    copy = m;
    memset(&m, 0x5a, sizeof m);
    CHECK_EQ_STR(fs_scoring_str(&copy, FS_SC_ONE_CITY), "Moravian Falls");
    CHECK_EQ_STR(fs_scoring_reasons(&copy, NULL), rs);

    /* An old message: no block, every string null, amount NaN, no reasons. */
    n = fs_msg_format_scoring(buf, sizeof buf, "old", 0.25, 0);
    CHECK_EQ_INT(fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err), 0);
    CHECK_EQ_INT(m.has_transaction, 0);
    CHECK(isnan(m.amount));
    CHECK(fs_scoring_reasons(&m, NULL) == NULL);
    for (int f = 0; f < FS_SC_NSTR; f++) {
        CHECK_EQ_INT(fs_scoring_str_null(&m, (enum fs_scoring_str)f), 1);
        CHECK_EQ_STR(fs_scoring_str(&m, (enum fs_scoring_str)f), "");
    }

    /* Refusals of the formatters: what would not parse back. */
    fs_scoring_txn bad = block;
    bad.str[FS_SC_TRANSACTION_TIME] = "2019-02-30 00:00";
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, &bad, NULL), -1);
    bad = block;
    bad.str[FS_SC_MERCH] = "\xc3(";
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, &bad, NULL), -1);
    bad = block;
    bad.amount = INFINITY;
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, &bad, NULL), -1);
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, NULL, "{\"bias\":1}"),
                 -1);
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, NULL, "[]"), -1);
    CHECK(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, NULL,
                                     "{\"top\":[],\"bias\":1e0}") > 0);
    const fs_reason inf[] = {{"x", 1, INFINITY}}, empty[] = {{"", 1, 1}};
    CHECK_EQ_INT(fs_msg_format_reasons(rs, sizeof rs, NAN, top, 2), -1);
    CHECK_EQ_INT(fs_msg_format_reasons(rs, sizeof rs, 0, inf, 1), -1);
    CHECK_EQ_INT(fs_msg_format_reasons(rs, sizeof rs, 0, empty, 1), -1);
    CHECK_EQ_INT(fs_msg_format_reasons(rs, (size_t)rn, -7.12, top, 2), -1);
    CHECK_EQ_INT(fs_msg_format_reasons(rs, (size_t)rn + 1, -7.12, top, 2), rn);

    /* The worst case fits FS_MSG_SCORING_MAX: strings of FS_TXN_TEXT_MAX bytes together,
     * every byte a control character, and reasons of FS_MSG_REASONS_MAX bytes. */
    static char strs[FS_SC_NSTR][FS_TXN_TEXT_MAX];
    fs_scoring_txn worst = {{0}, -1.2345678901234567e-300};
    size_t each = (FS_TXN_TEXT_MAX - 20) / (FS_SC_NSTR - 1) - 1;
    worst.str[FS_SC_TRANSACTION_TIME] = "2019-01-01 00:00:18";
    for (int f = 1; f < FS_SC_NSTR; f++) {
        memset(strs[f], 0x01, each);
        strs[f][each] = '\0';
        worst.str[f] = strs[f];
    }
    static fs_reason many[200];
    static char names[200][40];
    size_t nr = 0;
    for (; nr < 200; nr++) {
        snprintf(names[nr], sizeof names[nr], "f%zu_%s", nr, "padding_padding_padding");
        many[nr] = (fs_reason){names[nr], -1.2345678901234567e-300, -2.2250738585072014e-308};
        if (fs_msg_format_reasons(rs, sizeof rs, -1.2345678901234567e-300, many, nr + 1) < 0)
            break;
    }
    CHECK(nr > 10 && nr < 200); /* nr entries fit, nr + 1 do not */
    rn = fs_msg_format_reasons(rs, sizeof rs, -1.2345678901234567e-300, many, nr);
    CHECK(rn > FS_MSG_REASONS_MAX - 150 && rn <= FS_MSG_REASONS_MAX);
    char id[FS_TXN_ID_MAX + 1];
    memset(id, '"', FS_TXN_ID_MAX);
    id[FS_TXN_ID_MAX] = '\0';
    n = fs_msg_format_scoring_full(buf, sizeof buf, id, nextafter(0.0, 1.0), 1, &worst, rs);
    CHECK(n > 0);
    CHECK(n > 0 && fs_msg_parse_scoring(buf, (size_t)n, &m, err, sizeof err) == 0);
    CHECK_EQ_STR(fs_scoring_str(&m, FS_SC_US_STATE), strs[FS_SC_US_STATE]);
    CHECK_EQ_STR(fs_scoring_reasons(&m, NULL), rs);
    /* One byte more in the strings is refused by both sides. */
    strs[1][each] = 0x01;
    strs[1][each + 1] = '\0';
    memset(strs[2], 0x01, (FS_TXN_TEXT_MAX - 20) % (FS_SC_NSTR - 1) + each + 1);
    strs[2][(FS_TXN_TEXT_MAX - 20) % (FS_SC_NSTR - 1) + each + 1] = '\0';
    CHECK_EQ_INT(fs_msg_format_scoring_full(buf, sizeof buf, "a", 0.5, 0, &worst, NULL), -1);
    /* ... and the parser names it (a message written by hand). */
    {
        static char big[4 * FS_TXN_TEXT_MAX + FS_MSG_REASONS_MAX];
        int k = snprintf(big, sizeof big,
                         "{\"transaction_id\":\"a\",\"score\":0.5,\"fraud_flag\":0,"
                         "\"transaction\":{\"merch\":\"%0*d\",\"cat_id\":\"%0*d\"}}",
                         FS_TXN_TEXT_MAX / 2, 0, FS_TXN_TEXT_MAX / 2, 0);
        CHECK_EQ_INT(fs_msg_parse_scoring(big, (size_t)k, &m, err, sizeof err), -1);
        CHECK_EQ_STR(err, "transaction: strings longer than 2048 bytes together");
        /* Reasons over the limit. */
        size_t o = (size_t)snprintf(big, sizeof big,
                                    "{\"transaction_id\":\"a\",\"score\":0.5,\"fraud_flag\":0,"
                                    "\"reasons\":{\"bias\":0,\"top\":[");
        for (int i = 0; o < FS_MSG_REASONS_MAX + 200; i++)
            o += (size_t)snprintf(big + o, sizeof big - o,
                                  "%s{\"feature\":\"feature_%d\",\"contribution\":0.5}",
                                  i ? "," : "", i);
        o += (size_t)snprintf(big + o, sizeof big - o, "]}}");
        CHECK_EQ_INT(fs_msg_parse_scoring(big, o, &m, err, sizeof err), -1);
        CHECK_EQ_STR(err, "reasons: longer than 8191 bytes");
    }
    /* Content survives a format and parse round trip through the reference path too. */
    n = fs_msg_format_scoring_full(buf, sizeof buf, "t-9", 0.968, 1, &block, NULL);
    CHECK_EQ_INT(fs_msg_parse_scoring_ref(buf, (size_t)n, &m, err, sizeof err), 0);
    CHECK_EQ_INT(fs_msg_parse_scoring(buf, (size_t)n, &back, err, sizeof err), 0);
    CHECK(scoring_same(&m, &back));
}

static void test_transaction(void)
{
    char buf[4096], err[256];
    static const char msg[] =
        "{\"transaction_id\":\"0b9f6a1e-7c8d-4e2f-9a31-2b5c7d8e9f00\",\"data\":{"
        "\"transaction_time\":\"2019-01-01 00:00\",\"merch\":\"fraud_Kirlin and Sons\","
        "\"cat_id\":\"shopping_net\",\"amount\":281.06,\"name_1\":\"Jennifer\","
        "\"name_2\":\"Banks\",\"gender\":\"F\",\"street\":\"561 Perry Cove\","
        "\"one_city\":\"Moravian Falls\",\"us_state\":\"NC\",\"post_code\":28654,"
        "\"lat\":36.0788,\"lon\":-81.1781,\"population_city\":3495,"
        "\"jobs\":\"Psychologist, counselling\",\"merchant_lat\":36.011293,"
        "\"merchant_lon\":-82.048315}}";
    fs_txn t, u;
    CHECK_EQ_INT(fs_msg_parse_transaction(msg, sizeof msg - 1, &t, err, sizeof err), 0);
    CHECK_EQ_STR(t.transaction_id, "0b9f6a1e-7c8d-4e2f-9a31-2b5c7d8e9f00");
    CHECK_EQ_STR(t.merch, "fraud_Kirlin and Sons");
    CHECK_EQ_BITS(t.amount, 281.06);
    CHECK_EQ_INT(t.time, 1546300800);
    /* Formatting gives back exactly the canonical message. */
    int n = fs_msg_format_transaction(buf, sizeof buf, t.transaction_id, &t);
    CHECK_EQ_INT(n, (int)(sizeof msg - 1));
    CHECK_EQ_STR(buf, msg);
    CHECK_EQ_INT(fs_msg_format_transaction(buf, (size_t)n, t.transaction_id, &t), -1);
    CHECK_EQ_INT(fs_msg_format_transaction(buf, sizeof buf, "", &t), -1);
    CHECK_EQ_INT(fs_msg_parse_transaction(buf, (size_t)n, &u, err, sizeof err), 0);
    CHECK_EQ_BITS(u.merchant_lon, t.merchant_lon);

    /* The worst case fits FS_MSG_TRANSACTION_MAX: every text byte a control character. */
    {
        static char cells[FS_TXN_NFIELDS][256];
        const char *values[FS_TXN_NFIELDS];
        size_t lens[FS_TXN_NFIELDS];
        /* text[0], the time and its NUL, and room for the id the parse stores too */
        size_t room = FS_TXN_TEXT_MAX - 1 - 16 - 1 - (FS_TXN_ID_MAX + 1);
        for (int f = 0; f < FS_TXN_NFIELDS; f++) {
            values[f] = cells[f];
            lens[f] = 0;
            if (f == FS_F_TRANSACTION_TIME) {
                memcpy(cells[f], "2019-01-01 00:00", 17);
                lens[f] = 16;
            } else if (!fs_txn_field_is_numeric((enum fs_txn_field)f)) {
                size_t k = room / 9 - 1 < 255 ? room / 9 - 1 : 255; /* 9 string fields */
                memset(cells[f], 0x01, k);
                lens[f] = k;
            } else {
                memcpy(cells[f], "-0.00012345678901234567", 24);
                lens[f] = 23;
                if (f == FS_F_AMOUNT || f == FS_F_POPULATION_CITY || f == FS_F_POST_CODE) {
                    memcpy(cells[f], "12345678901234567890123", 24);
                }
            }
        }
        int bad_field;
        CHECK_EQ_INT(fs_txn_from_strings(&t, values, lens, NULL, NULL, &bad_field, err,
                                         sizeof err),
                     0);
        static char big[FS_MSG_TRANSACTION_MAX];
        char id[FS_TXN_ID_MAX + 1];
        memset(id, '\\', FS_TXN_ID_MAX);
        id[FS_TXN_ID_MAX] = '\0';
        n = fs_msg_format_transaction(big, sizeof big, id, &t);
        CHECK(n > 5 * (FS_TXN_TEXT_MAX - 300));
        CHECK_EQ_INT(fs_msg_parse_transaction(big, (size_t)n, &u, err, sizeof err), 0);
        CHECK_EQ_STR(u.street, t.street);
        CHECK_EQ_STR(u.transaction_id, id);
    }

    static const struct {
        const char *in, *want;
    } bad[] = {
        {"nope", "not JSON: '[' or '{' expected"},
        {"{\"data\":{}}", "missing transaction_id"},
        {"{\"transaction_id\":\"a\"}", "missing data"},
        {"{\"transaction_id\":\"a\",\"data\":[]}", "data: expected an object, got an array"},
        {"{\"transaction_id\":\"a\",\"data\":{}}",
         "data.transaction_time: missing (required)"},
        {"{\"transaction_id\":\"a\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\","
         "\"amount\":\"x\"}}",
         "data.amount: not a number: \"x\""},
        {"{\"transaction_id\":\"a\",\"data\":{\"transaction_time\":\"2019-01-01 00:00\","
         "\"merch\":\"a\\u0000b\"}}",
         "not JSON: \\u0000 is not allowed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(fs_msg_parse_transaction(bad[i].in, strlen(bad[i].in), &t, err, sizeof err),
                     -1);
        CHECK_PREFIX(err, bad[i].want);
    }
}

int main(void)
{
    test_scoring();
    test_scoring_full();
    test_transaction();
    return CHECK_DONE();
}
