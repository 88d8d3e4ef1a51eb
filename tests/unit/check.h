/*
 * Tiny assertions for the unit tests (in the manner of libuv's test/task.h): each test file
 * is its own executable; a failed check prints file:line and the expression, and the
 * executable exits non-zero at the end. CHECK_* continue, so one run shows every failure.
 */
#ifndef FS_TEST_CHECK_H
#define FS_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                                      \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(expr)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #expr);     \
            check_failures++;                                                            \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                  \
        check_count++;                                                                   \
        if (check_a_ != check_b_) {                                                      \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                    #a, #b, check_a_, check_b_);                                         \
            check_failures++;                                                            \
        }                                                                                \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                               \
    do {                                                                                 \
        const char *check_a_ = (a), *check_b_ = (b);                                     \
        check_count++;                                                                   \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0) {   \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,      \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                    \
                    check_b_ ? check_b_ : "(null)");                                     \
            check_failures++;                                                            \
        }                                                                                \
    } while (0)

/* Bitwise equality of doubles (NaN equals NaN of the same bits). */
#define CHECK_EQ_BITS(a, b)                                                              \
    do {                                                                                 \
        double check_a_ = (a), check_b_ = (b);                                           \
        check_count++;                                                                   \
        if (memcmp(&check_a_, &check_b_, sizeof check_a_) != 0) {                        \
            fprintf(stderr, "%s:%d: %s == %s failed: %.17g != %.17g\n", __FILE__,        \
                    __LINE__, #a, #b, check_a_, check_b_);                               \
            check_failures++;                                                            \
        }                                                                                \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double check_a_ = (a), check_b_ = (b);                                           \
        check_count++;                                                                   \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                     \
            fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.17g vs %.17g\n", __FILE__, \
                    __LINE__, #a, #b, (double)(tol), check_a_, check_b_);                \
            check_failures++;                                                            \
        }                                                                                \
    } while (0)

/* Ends main(): prints the closing line ctest logs show, returns the exit code. */
#define CHECK_DONE()                                                                     \
    (printf("%d passed, %d failed\n", check_count - check_failures, check_failures),     \
     check_failures ? 1 : 0)

#endif
