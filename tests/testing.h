/*  testing.h - the small test harness every weft test uses.

    A test file defines cases with TEST_CASE("sentence") and runs them from main with
    RUN_CASE. CHECK stops the case at the first failed assertion and reports file, line and
    the expression; a case that fails makes the program exit non-zero, which ctest reports.
    WAIT_UNTIL polls a condition until a deadline instead of sleeping a fixed time.
    WEFT_TEST_ONLY=TEXT in the environment runs only the cases whose sentence contains TEXT
    (to repeat one case while chasing a rare failure).
*/
#ifndef WEFT_TESTING_H_INCLUDED
#define WEFT_TESTING_H_INCLUDED

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int t_failed_cases;
static int t_case_failed;

#define TEST_CASE(name, fn) static void fn(void)

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "  FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            t_case_failed = 1;                                                                  \
            return;                                                                             \
        }                                                                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                        \
        long long _a = (long long)(a), _b = (long long)(b);                                     \
        if (_a != _b) {                                                                         \
            fprintf(stderr, "  FAILED %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__,   \
                    #a, #b, _a, _b);                                                            \
            t_case_failed = 1;                                                                  \
            return;                                                                             \
        }                                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                                         \
    do {                                                                                        \
        const char *_a = (a), *_b = (b);                                                        \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                                \
            fprintf(stderr, "  FAILED %s:%d: %s == %s (\"%s\" != \"%s\")\n", __FILE__,          \
                    __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");                  \
            t_case_failed = 1;                                                                  \
            return;                                                                             \
        }                                                                                       \
    } while (0)

static inline int64_t t_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void t_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/*  Polls cond every 5 ms until it holds or timeout_ms passes; evaluates to cond's final value. */
#define WAIT_UNTIL(cond, timeout_ms)                                                            \
    ({                                                                                          \
        int64_t _deadline = t_mono_ms() + (timeout_ms);                                         \
        while (!(cond) && t_mono_ms() < _deadline)                                              \
            t_nap_ms(5);                                                                        \
        (cond);                                                                                 \
    })

#define RUN_CASE(name, fn)                                                                      \
    do {                                                                                        \
        const char *_only = getenv("WEFT_TEST_ONLY");                                           \
        if (_only && *_only && !strstr(name, _only))                                            \
            break;                                                                              \
        t_case_failed = 0;                                                                      \
        int64_t _t0 = t_mono_ms();                                                              \
        fn();                                                                                   \
        fprintf(stderr, "%s: %s (%lld ms)\n", t_case_failed ? "FAIL" : "ok  ", name,            \
                (long long)(t_mono_ms() - _t0));                                                \
        t_failed_cases += t_case_failed;                                                        \
    } while (0)

#define TEST_EXIT() (t_failed_cases ? (fprintf(stderr, "%d case(s) failed\n", t_failed_cases), 1) : 0)

#endif
