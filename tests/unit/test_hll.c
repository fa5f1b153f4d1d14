/* Unit tests of the HyperLogLog counter: exactness of the sparse form
 * (inline and on the heap), accuracy of the dense estimate, and merges in
 * every sparse/dense mix checked against a counter fed the union directly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "hll.h"

/* Sparse sets switch to dense registers past this many hashes (hll.c). */
#define SPARSE_LIMIT 384
#define DENSE_BYTES 16384

/* splitmix64: distinct inputs give distinct outputs, so the values i = 0..n-1
 * of one seed are n distinct values and the true cardinality is known. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t value_hash(uint64_t seed, uint64_t i)
{
    uint64_t v = mix(seed * 0x100000000ull + i);
    return nta_hash64(&v, sizeof v);
}

/* Counters live on the heap here so that ASan sees every access. */
static nta_hll *new_hll(void)
{
    nta_hll *h = malloc(sizeof *h);
    assert_non_null(h);
    nta_hll_init(h);
    return h;
}

static void del_hll(nta_hll *h)
{
    nta_hll_free(h);
    free(h);
}

static nta_hll *filled(uint64_t seed, uint64_t from, uint64_t to)
{
    nta_hll *h = new_hll();
    for (uint64_t i = from; i < to; i++)
        nta_hll_add(h, value_hash(seed, i));
    return h;
}

static void test_empty(void **state)
{
    (void)state;
    nta_hll *h = new_hll();
    assert_int_equal(nta_hll_estimate(h), 0);
    assert_int_equal(nta_hll_heap_bytes(h), 0);
    del_hll(h);
}

/* The first NTA_HLL_INLINE hashes need no heap; a counter holds no pointer
 * into itself, so a copy of its bytes (an entry moved by realloc) is the
 * same counter, in every form. */
static void test_inline_and_move(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {NTA_HLL_INLINE, NTA_HLL_INLINE + 1, SPARSE_LIMIT, 5000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        nta_hll *h = filled(9, 0, sizes[s]);
        if (sizes[s] <= NTA_HLL_INLINE)
            assert_int_equal(nta_hll_heap_bytes(h), 0);
        else
            assert_true(nta_hll_heap_bytes(h) > 0);
        uint64_t e = nta_hll_estimate(h);
        nta_hll *moved = malloc(sizeof *moved);
        assert_non_null(moved);
        memcpy(moved, h, sizeof *h);
        free(h);
        assert_int_equal(nta_hll_estimate(moved), e);
        nta_hll_add(moved, value_hash(9, sizes[s]));
        nta_hll *direct = filled(9, 0, sizes[s] + 1);
        assert_int_equal(nta_hll_estimate(moved), nta_hll_estimate(direct));
        del_hll(direct);
        del_hll(moved);
    }
}

static void test_hash64_is_xxh3(void **state)
{
    (void)state;
    const char text[] = "10.0.0.1 and some more bytes";
    for (size_t len = 0; len < sizeof text; len++)
        assert_int_equal(nta_hash64(text, len), XXH3_64bits(text, len));
}

/* Every count up to the sparse limit is exact, duplicates included, and the
 * hash 0 (the empty-slot marker inside the set) counts like any other. */
static void test_sparse_exact(void **state)
{
    (void)state;
    nta_hll *h = new_hll();
    nta_hll_add(h, 0);
    nta_hll_add(h, 0);
    assert_int_equal(nta_hll_estimate(h), 1);
    for (uint64_t i = 0; i < SPARSE_LIMIT - 1; i++) {
        nta_hll_add(h, value_hash(7, i));
        nta_hll_add(h, value_hash(7, i / 2));
        assert_int_equal(nta_hll_estimate(h), i + 2);
    }
    /* Hashes that collide in the set's low bits still count apart. */
    nta_hll *c = new_hll();
    for (uint64_t i = 1; i <= 300; i++)
        nta_hll_add(c, i << 32);
    assert_int_equal(nta_hll_estimate(c), 300);
    del_hll(c);
    del_hll(h);
}

static void test_sparse_memory_bound(void **state)
{
    (void)state;
    nta_hll *h = filled(3, 0, SPARSE_LIMIT);
    assert_int_equal(nta_hll_estimate(h), SPARSE_LIMIT);
    assert_true(nta_hll_heap_bytes(h) <= DENSE_BYTES / 4);
    nta_hll_add(h, value_hash(3, SPARSE_LIMIT));
    assert_true(nta_hll_heap_bytes(h) >= DENSE_BYTES);
    assert_true(nta_hll_heap_bytes(h) < DENSE_BYTES + 256);
    /* Right after the switch the dense estimate is within a few values (its
     * standard deviation there is about 2). */
    uint64_t e = nta_hll_estimate(h);
    assert_true(e >= SPARSE_LIMIT + 1 - 10 && e <= SPARSE_LIMIT + 1 + 10);
    del_hll(h);
}

static void test_free_empties(void **state)
{
    (void)state;
    nta_hll *h = filled(5, 0, 5000);
    nta_hll_free(h);
    assert_int_equal(nta_hll_estimate(h), 0);
    assert_int_equal(nta_hll_heap_bytes(h), 0);
    for (uint64_t i = 0; i < 10; i++)
        nta_hll_add(h, value_hash(5, i));
    assert_int_equal(nta_hll_estimate(h), 10);
    del_hll(h);
}

/* Values that recur (the inline slots then remember recent hashes) leave
 * exactly the counter that each value added once leaves, in every form. */
static void test_repeats(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {5, NTA_HLL_INLINE + 3, 200, SPARSE_LIMIT + 1, 30000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        nta_hll *once = filled(23, 0, n);
        nta_hll *rep = new_hll();
        for (uint64_t i = 0; i < 8 * n; i++) {
            /* Runs of one value, a few hot values, and every value. */
            nta_hll_add(rep, value_hash(23, (i / 3) % n));
            nta_hll_add(rep, value_hash(23, i % 4 % n));
        }
        assert_int_equal(nta_hll_estimate(rep), nta_hll_estimate(once));
        if (n <= SPARSE_LIMIT)
            assert_int_equal(nta_hll_estimate(rep), n);
        del_hll(rep);
        del_hll(once);
    }
}

/* 3% is about 3.7 standard errors of 0.81%; the checkpoints include the
 * 2.5m..5m range (40k..80k) where the classic estimator has a bias bump. */
static void test_accuracy(void **state)
{
    (void)state;
    static const uint64_t points[] = {1000,  2000,   5000,   10000,  20000,  40000,
                                      60000, 100000, 200000, 500000, 1000000};
    const size_t npoints = sizeof points / sizeof points[0];
    double worst = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        nta_hll *h = new_hll();
        uint64_t added = 0;
        for (size_t p = 0; p < npoints; p++) {
            for (; added < points[p]; added++)
                nta_hll_add(h, value_hash(seed, added));
            double err = fabs((double)nta_hll_estimate(h) - (double)points[p]) /
                         (double)points[p];
            if (err > worst)
                worst = err;
            if (err > 0.03)
                fail_msg("seed %llu n %llu: estimate %llu, error %.2f%%",
                         (unsigned long long)seed, (unsigned long long)points[p],
                         (unsigned long long)nta_hll_estimate(h), err * 100);
        }
        del_hll(h);
    }
    print_message("worst relative error %.3f%%\n", worst * 100);
}

/* merge(A, B) must give exactly what one counter fed A U B gives: the same
 * exact count while sparse, the same registers once dense. */
static void check_merge(uint64_t a_from, uint64_t a_to, uint64_t b_from, uint64_t b_to)
{
    nta_hll *a = filled(11, a_from, a_to);
    nta_hll *b = filled(11, b_from, b_to);
    uint64_t lo = a_from < b_from ? a_from : b_from;
    uint64_t hi = a_to > b_to ? a_to : b_to;
    nta_hll *u = filled(11, lo, hi);
    uint64_t b_before = nta_hll_estimate(b);
    size_t b_bytes = nta_hll_heap_bytes(b);
    nta_hll_merge(a, b);
    if (nta_hll_estimate(a) != nta_hll_estimate(u))
        fail_msg("merge [%llu,%llu) U [%llu,%llu): %llu, union fed directly %llu",
                 (unsigned long long)a_from, (unsigned long long)a_to,
                 (unsigned long long)b_from, (unsigned long long)b_to,
                 (unsigned long long)nta_hll_estimate(a), (unsigned long long)nta_hll_estimate(u));
    assert_int_equal(nta_hll_estimate(b), b_before);
    assert_int_equal(nta_hll_heap_bytes(b), b_bytes);
    if (hi - lo <= SPARSE_LIMIT)
        assert_int_equal(nta_hll_estimate(a), hi - lo);
    del_hll(a);
    del_hll(b);
    del_hll(u);
}

static void test_merge_sparse_sparse(void **state)
{
    (void)state;
    check_merge(0, 100, 50, 200);   /* stays sparse, overlapping */
    check_merge(0, 300, 300, 384);  /* exactly at the limit */
    check_merge(0, 300, 200, 500);  /* the union no longer fits: turns dense */
    check_merge(0, 0, 0, 10);       /* empty destination */
    check_merge(0, 10, 0, 0);       /* empty source */
}

static void test_merge_mixed(void **state)
{
    (void)state;
    check_merge(0, 100, 50, 5000);        /* sparse := sparse U dense */
    check_merge(0, 5000, 4900, 5100);     /* dense := dense U sparse */
    check_merge(0, 50000, 25000, 90000);  /* dense U dense */
    check_merge(0, 200000, 0, 200000);    /* identical sets */
}

/* The hash 0 lives outside the sparse set; a merge must carry it over, into
 * a sparse or a dense destination. */
static void test_merge_zero_hash(void **state)
{
    (void)state;
    nta_hll *src = new_hll();
    nta_hll_add(src, 0);
    nta_hll *sparse = filled(17, 0, 10);
    nta_hll_merge(sparse, src);
    assert_int_equal(nta_hll_estimate(sparse), 11);
    nta_hll *dense = filled(17, 0, 1000), *direct = filled(17, 0, 1000);
    nta_hll_add(direct, 0);
    nta_hll_merge(dense, src);
    assert_int_equal(nta_hll_estimate(dense), nta_hll_estimate(direct));
    /* A dense source holding 0 in its registers carries it too. */
    nta_hll *empty = new_hll();
    nta_hll_merge(empty, direct);
    assert_int_equal(nta_hll_estimate(empty), nta_hll_estimate(direct));
    del_hll(empty);
    del_hll(src);
    del_hll(sparse);
    del_hll(dense);
    del_hll(direct);
}

static void test_merge_self(void **state)
{
    (void)state;
    nta_hll *a = filled(13, 0, 100);
    nta_hll_merge(a, a);
    assert_int_equal(nta_hll_estimate(a), 100);
    del_hll(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_hash64_is_xxh3),
        cmocka_unit_test(test_sparse_exact),
        cmocka_unit_test(test_sparse_memory_bound),
        cmocka_unit_test(test_free_empties),
        cmocka_unit_test(test_inline_and_move),
        cmocka_unit_test(test_repeats),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_merge_sparse_sparse),
        cmocka_unit_test(test_merge_mixed),
        cmocka_unit_test(test_merge_zero_hash),
        cmocka_unit_test(test_merge_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
