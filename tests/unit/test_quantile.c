/* Unit tests of the DDSketch quantile sketch, against exact quantiles of the
 * same values: sort them, take the value of rank floor(p * (n - 1))
 * (0-based, DDSketch's definition), and require the estimate to be within
 * alpha = 1% of it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantile.h"

#define ALPHA 0.01
/* Estimates are computed in double: allow for rounding, nothing more. */
#define SLACK 1e-12

static const double ps[] = {0.5, 0.9, 0.95, 0.99, 0.999};
#define NPS (sizeof ps / sizeof ps[0])

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rnd01(void)
{
    return ((double)(rnd() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double normal(void)
{
    return sqrt(-2.0 * log(rnd01())) * cos(2.0 * M_PI * rnd01());
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double p)
{
    return sorted[(size_t)floor(p * (double)(n - 1))];
}

static void check_accuracy(const nta_qsketch *q, const uint64_t *vals, size_t n, const char *what)
{
    uint64_t *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, vals, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    assert_int_equal(nta_qsketch_count(q), n);
    assert_int_equal(nta_qsketch_min(q), sorted[0]);
    assert_int_equal(nta_qsketch_max(q), sorted[n - 1]);
    for (size_t i = 0; i < NPS; i++) {
        double x = (double)exact_quantile(sorted, n, ps[i]);
        double est = nta_qsketch_quantile(q, ps[i]);
        if (fabs(est - x) > ALPHA * x * (1 + SLACK))
            fail_msg("%s: p%g estimate %.6f, exact %.0f (relative error %.5f)", what,
                     ps[i] * 100, est, x, fabs(est - x) / x);
    }
    /* The extremes are exact: clamped to the minimum and maximum. */
    assert_true(nta_qsketch_quantile(q, 0) == (double)sorted[0]);
    assert_true(nta_qsketch_quantile(q, 1) == (double)sorted[n - 1]);
    free(sorted);
}

static uint64_t *lognormal(size_t n, double mu, double sigma, uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 3;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)llround(exp(mu + sigma * normal()));
    return v;
}

static uint64_t *uniform(size_t n, uint64_t lo, uint64_t hi, uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 5;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + rnd() % (hi - lo + 1);
    return v;
}

static nta_qsketch *sketch_of(const uint64_t *v, size_t n)
{
    nta_qsketch *q = nta_qsketch_create();
    assert_non_null(q);
    for (size_t i = 0; i < n; i++)
        nta_qsketch_add(q, v[i]);
    return q;
}

static void test_lognormal(void **state)
{
    (void)state;
    /* Flow sizes in bytes: heavy tailed, median ~1100, p99.9 in the millions. */
    size_t n = 200000;
    uint64_t *v = lognormal(n, 7, 2, 1);
    nta_qsketch *q = sketch_of(v, n);
    check_accuracy(q, v, n, "lognormal(7, 2)");
    nta_qsketch_destroy(q);
    free(v);
    /* Narrow: few buckets, values near each other. */
    v = lognormal(n, 10, 0.1, 2);
    q = sketch_of(v, n);
    check_accuracy(q, v, n, "lognormal(10, 0.1)");
    nta_qsketch_destroy(q);
    free(v);
}

static void test_uniform(void **state)
{
    (void)state;
    size_t n = 150000;
    uint64_t *v = uniform(n, 1, 1000000, 3);
    nta_qsketch *q = sketch_of(v, n);
    check_accuracy(q, v, n, "uniform[1, 1e6]");
    nta_qsketch_destroy(q);
    free(v);
    /* Small integers: relative accuracy means exact answers here. */
    v = uniform(n, 1, 40, 4);
    q = sketch_of(v, n);
    check_accuracy(q, v, n, "uniform[1, 40]");
    nta_qsketch_destroy(q);
    free(v);
    /* Sizes of single packets: 40 to 1500. */
    v = uniform(n, 40, 1500, 5);
    q = sketch_of(v, n);
    check_accuracy(q, v, n, "uniform[40, 1500]");
    nta_qsketch_destroy(q);
    free(v);
}

/* Merging adds bucket counts: the merge of parts is the sketch of the
 * whole, quantile for quantile. */
static void test_merge(void **state)
{
    (void)state;
    size_t n = 120000;
    uint64_t *v = lognormal(n, 6, 1.5, 6);
    /* Parts with different ranges, so that merges must widen the buckets. */
    for (size_t i = n / 2; i < n; i++)
        v[i] = v[i] * 1000 + 7;
    nta_qsketch *whole = sketch_of(v, n);
    static const size_t cut[] = {0, 10, 30000, 59999, 60000, 90000, 120000};
    nta_qsketch *merged = nta_qsketch_create();
    assert_non_null(merged);
    for (size_t c = 0; c + 1 < sizeof cut / sizeof cut[0]; c++) {
        nta_qsketch *part = sketch_of(v + cut[c], cut[c + 1] - cut[c]);
        nta_qsketch_merge(merged, part);
        nta_qsketch_destroy(part);
    }
    /* An empty sketch merges as nothing, both ways. */
    nta_qsketch *empty = nta_qsketch_create();
    assert_non_null(empty);
    nta_qsketch_merge(merged, empty);
    check_accuracy(merged, v, n, "merged parts");
    for (int i = 0; i <= 1000; i++)
        assert_true(nta_qsketch_quantile(merged, i / 1000.0) ==
                    nta_qsketch_quantile(whole, i / 1000.0));
    nta_qsketch_merge(empty, merged);
    check_accuracy(empty, v, n, "merged into empty");
    nta_qsketch_destroy(empty);
    nta_qsketch_destroy(merged);
    nta_qsketch_destroy(whole);
    free(v);
}

static void test_zeros(void **state)
{
    (void)state;
    size_t n = 50000;
    uint64_t *v = lognormal(n, 4, 1, 7);
    for (size_t i = 0; i < n; i += 3)
        v[i] = 0; /* a third are zero */
    nta_qsketch *q = sketch_of(v, n);
    check_accuracy(q, v, n, "a third zeros");
    assert_true(nta_qsketch_quantile(q, 0.2) == 0.0);
    assert_true(nta_qsketch_quantile(q, 0.0) == 0.0);
    assert_true(nta_qsketch_quantile(q, 0.4) > 0.0);
    nta_qsketch_destroy(q);
    /* Only zeros, and zeros merged into values. */
    q = nta_qsketch_create();
    assert_non_null(q);
    for (int i = 0; i < 10; i++)
        nta_qsketch_add(q, 0);
    assert_true(nta_qsketch_quantile(q, 0.99) == 0.0);
    assert_int_equal(nta_qsketch_count(q), 10);
    assert_int_equal(nta_qsketch_buckets(q), 0);
    nta_qsketch *r = nta_qsketch_create();
    assert_non_null(r);
    nta_qsketch_add(r, 100);
    nta_qsketch_merge(r, q);
    assert_int_equal(nta_qsketch_min(r), 0);
    assert_int_equal(nta_qsketch_max(r), 100);
    assert_true(nta_qsketch_quantile(r, 0.5) == 0.0);
    assert_true(nta_qsketch_quantile(r, 1.0) == 100.0);
    nta_qsketch_destroy(r);
    nta_qsketch_destroy(q);
    free(v);
}

/* Values over all of uint64: the bucket range stays within the limit; the
 * lowest buckets are collapsed, so the quantiles in them are overestimated,
 * and those above stay within alpha. */
static void test_memory_bound(void **state)
{
    (void)state;
    size_t n = 100000;
    rng_state = 99;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        int bits = (int)(rnd() % 64);
        v[i] = (rnd() >> (63 - bits)) | 1;
    }
    v[0] = 1;
    v[1] = UINT64_MAX;
    nta_qsketch *q = sketch_of(v, n);
    assert_true(nta_qsketch_buckets(q) <= NTA_QSKETCH_MAX_BUCKETS);
    assert_true(nta_qsketch_bytes(q) <= 256 + NTA_QSKETCH_MAX_BUCKETS * sizeof(uint64_t));
    uint64_t *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, v, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    /* Collapsed: everything below gamma^(max bucket - 2047) ~ 2^59 / 2^59. */
    double cut = pow(1.01 / 0.99, ceil(log(18446744073709551615.0) / log(1.01 / 0.99)) -
                                      NTA_QSKETCH_MAX_BUCKETS);
    for (int i = 1; i < 1000; i++) {
        double p = i / 1000.0;
        double x = (double)exact_quantile(sorted, n, p);
        double est = nta_qsketch_quantile(q, p);
        if (x > cut)
            assert_true(fabs(est - x) <= ALPHA * x * (1 + SLACK));
        else
            assert_true(est >= x * (1 - ALPHA * (1 + SLACK)));
    }
    assert_true(nta_qsketch_quantile(q, 1) == (double)UINT64_MAX);
    /* A merge of two such sketches keeps the bound too. */
    nta_qsketch *r = sketch_of(v, n / 2);
    nta_qsketch_add(r, 2);
    nta_qsketch_merge(r, q);
    assert_true(nta_qsketch_buckets(r) <= NTA_QSKETCH_MAX_BUCKETS);
    assert_int_equal(nta_qsketch_count(r), n + n / 2 + 1);
    nta_qsketch_destroy(r);

    /* Clear gives back all but a few buckets. */
    nta_qsketch *fresh = nta_qsketch_create();
    assert_non_null(fresh);
    nta_qsketch_clear(q);
    assert_int_equal(nta_qsketch_bytes(q), nta_qsketch_bytes(fresh));
    assert_int_equal(nta_qsketch_count(q), 0);
    assert_true(nta_qsketch_quantile(q, 0.5) == 0.0);
    nta_qsketch_add(q, 1234);
    assert_true(fabs(nta_qsketch_quantile(q, 0.5) - 1234) == 0);
    nta_qsketch_destroy(fresh);
    nta_qsketch_destroy(q);
    free(sorted);
    free(v);
}

/* The bucket mapping itself: each value's estimate, between neighbours that
 * defeat the min/max clamp, is within alpha. */
static void test_every_small_value(void **state)
{
    (void)state;
    for (uint64_t x = 1; x < 100000; x += 1 + x / 500) {
        nta_qsketch *q = nta_qsketch_create();
        assert_non_null(q);
        nta_qsketch_add(q, 1);
        nta_qsketch_add(q, x);
        nta_qsketch_add(q, x);
        nta_qsketch_add(q, (uint64_t)1 << 40);
        double est = nta_qsketch_quantile(q, 0.5);
        if (fabs(est - (double)x) > ALPHA * (double)x * (1 + SLACK))
            fail_msg("value %llu: estimate %.6f", (unsigned long long)x, est);
        /* Below 50, a bucket holds one integer at most: exact answers. */
        if (x < 50 && est != (double)x)
            fail_msg("value %llu: estimate %.6f, not exact", (unsigned long long)x, est);
        nta_qsketch_destroy(q);
    }
    nta_qsketch_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lognormal),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_zeros),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_every_small_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
