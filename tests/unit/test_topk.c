/* Unit tests of the top-k summary. Every check is against the exact
 * weights, computed here by brute force over the same stream: for each item
 * the summary holds, true <= value <= true + error; every item heavier than
 * the floor is held; the floor is at most total / (m + 1); merged summaries
 * keep all of it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hll.h"
#include "topk.h"

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
    return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

/* A stream of items 0..universe-1 and weights. */
typedef struct stream {
    size_t n;
    uint32_t *item;
    uint64_t *weight;
    uint32_t universe;
} stream;

/* Zipf(s) over the universe, by inversion of the cumulative distribution;
 * weights uniform in [1, wmax] (wmax 1: counting). Items are shuffled
 * through a permutation so that heavy items are not the small numbers. */
static stream zipf_stream(size_t n, uint32_t universe, double s, uint64_t wmax, uint64_t seed)
{
    rng_state = seed * 0x9e3779b97f4a7c15ull + 7;
    double *cdf = malloc(universe * sizeof *cdf);
    uint32_t *perm = malloc(universe * sizeof *perm);
    assert_non_null(cdf);
    assert_non_null(perm);
    double acc = 0;
    for (uint32_t i = 0; i < universe; i++) {
        acc += 1.0 / pow((double)(i + 1), s);
        cdf[i] = acc;
        perm[i] = i;
    }
    for (uint32_t i = universe - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rnd() % (i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    stream st = {.n = n, .universe = universe};
    st.item = malloc(n * sizeof *st.item);
    st.weight = malloc(n * sizeof *st.weight);
    assert_non_null(st.item);
    assert_non_null(st.weight);
    for (size_t i = 0; i < n; i++) {
        double u = rnd01() * acc;
        uint32_t lo = 0, hi = universe - 1;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        st.item[i] = perm[lo];
        st.weight[i] = 1 + rnd() % wmax;
    }
    free(cdf);
    free(perm);
    return st;
}

static void stream_free(stream *s)
{
    free(s->item);
    free(s->weight);
}

static nta_topk_key key_of(uint32_t item)
{
    nta_topk_key k;
    memset(&k, 0, sizeof k);
    memcpy(k.b, &item, sizeof item);
    return k;
}

static uint32_t item_of(const nta_topk_key *k)
{
    uint32_t item;
    memcpy(&item, k->b, sizeof item);
    return item;
}

/* hash_mask narrows the hash to force collisions in the summary's index. */
static uint64_t hash_mask = UINT64_MAX;

static void add_range(nta_topk *t, const stream *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        nta_topk_key k = key_of(s->item[i]);
        nta_topk_add(t, &k, nta_hash64(k.b, sizeof k.b) & hash_mask, s->weight[i]);
    }
}

static uint64_t *exact_range(const stream *s, size_t from, size_t to)
{
    uint64_t *w = calloc(s->universe, sizeof *w);
    assert_non_null(w);
    for (size_t i = from; i < to; i++)
        w[s->item[i]] += s->weight[i];
    return w;
}

static int desc_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

/* Every guarantee of topk.h, against exact weights. Returns the floor. */
static uint64_t check_bounds(const nta_topk *t, const uint64_t *exact, uint32_t universe,
                             uint32_t m, size_t k)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < universe; i++)
        total += exact[i];
    assert_int_equal(nta_topk_total(t), total);
    uint64_t fl = nta_topk_floor(t);
    if (fl * (m + 1) > total)
        fail_msg("floor %llu above total/(m+1) = %llu/%u", (unsigned long long)fl,
                 (unsigned long long)total, m + 1);
    size_t held = nta_topk_size(t);
    assert_true(held <= 4 * m);
    nta_topk_item *items = malloc((held + 1) * sizeof *items);
    assert_non_null(items);
    assert_int_equal(nta_topk_items(t, items, held + 1), held);
    char *is_held = calloc(universe, 1);
    assert_non_null(is_held);
    for (size_t i = 0; i < held; i++) {
        uint32_t x = item_of(&items[i].key);
        assert_true(x < universe);
        assert_false(is_held[x]);
        is_held[x] = 1;
        if (i > 0)
            assert_true(items[i - 1].value >= items[i].value);
        if (!(exact[x] <= items[i].value && items[i].value <= exact[x] + items[i].error))
            fail_msg("item %u: true %llu, value %llu, error %llu", x,
                     (unsigned long long)exact[x], (unsigned long long)items[i].value,
                     (unsigned long long)items[i].error);
        assert_true(items[i].error <= fl);
    }
    for (uint32_t x = 0; x < universe; x++)
        if (!is_held[x] && exact[x] > fl)
            fail_msg("item %u (weight %llu) above the floor %llu is not held", x,
                     (unsigned long long)exact[x], (unsigned long long)fl);
    /* The reported top k: each true top-k item that beats the (k+1)-th by
     * more than the floor must be among them. */
    uint64_t *sorted = malloc(universe * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, exact, universe * sizeof *sorted);
    qsort(sorted, universe, sizeof *sorted, desc_u64);
    uint64_t next = k < universe ? sorted[k] : 0;
    size_t nk = held < k ? held : k;
    char *in_top = calloc(universe, 1);
    assert_non_null(in_top);
    for (size_t i = 0; i < nk; i++)
        in_top[item_of(&items[i].key)] = 1;
    for (uint32_t x = 0; x < universe; x++) {
        if (exact[x] > next + fl) {
            if (!in_top[x])
                fail_msg("true top-%zu item %u (weight %llu) not reported", k, x,
                         (unsigned long long)exact[x]);
        }
    }
    free(sorted);
    free(in_top);
    free(is_held);
    free(items);
    return fl;
}

static void test_zipf_single(void **state)
{
    (void)state;
    static const double skew[] = {0.8, 1.1, 1.5};
    for (size_t si = 0; si < 3; si++) {
        stream s = zipf_stream(200000, 20000, skew[si], 1500, si + 1);
        uint64_t *exact = exact_range(&s, 0, s.n);
        static const uint32_t ms[] = {64, 400};
        for (size_t mi = 0; mi < 2; mi++) {
            nta_topk *t = nta_topk_create(ms[mi]);
            assert_non_null(t);
            assert_int_equal(nta_topk_capacity(t), ms[mi]);
            add_range(t, &s, 0, s.n);
            uint64_t fl = check_bounds(t, exact, s.universe, ms[mi], 10);
            assert_true(fl > 0);
            assert_true(nta_topk_size(t) > ms[mi] / 2);
            /* On skewed data the heaviest items come out exactly in order. */
            if (skew[si] >= 1.1) {
                nta_topk_item top[5];
                assert_int_equal(nta_topk_items(t, top, 5), 5);
                uint64_t prev = UINT64_MAX;
                for (int i = 0; i < 5; i++) {
                    uint64_t best = 0;
                    for (uint32_t x = 0; x < s.universe; x++)
                        if (exact[x] < prev && exact[x] > best)
                            best = exact[x];
                    assert_int_equal(exact[item_of(&top[i].key)], best);
                    prev = best;
                }
            }
            nta_topk_destroy(t);
        }
        free(exact);
        stream_free(&s);
    }
}

/* Panes merged one after the other, and pairwise as a tree, keep the
 * bounds of one summary over everything. */
static void test_merge(void **state)
{
    (void)state;
    enum { PANES = 6 };
    for (uint64_t seed = 10; seed < 14; seed++) {
        stream s = zipf_stream(120000, 8000, seed % 2 ? 1.0 : 1.3, seed % 3 ? 1500 : 1, seed);
        uint64_t *exact = exact_range(&s, 0, s.n);
        const uint32_t m = 64;
        nta_topk *pane[PANES];
        for (int p = 0; p < PANES; p++) {
            pane[p] = nta_topk_create(m);
            assert_non_null(pane[p]);
            /* Uneven panes, the last two with a drifted distribution. */
            size_t from = s.n * (size_t)p * p / (PANES * PANES);
            size_t to = s.n * (size_t)(p + 1) * (p + 1) / (PANES * PANES);
            if (p >= 4)
                for (size_t i = from; i < to; i++)
                    s.item[i] = (s.item[i] + 17) % s.universe;
            add_range(pane[p], &s, from, to);
            uint64_t *ex = exact_range(&s, from, to);
            check_bounds(pane[p], ex, s.universe, m, 10);
            free(ex);
        }
        free(exact);
        exact = exact_range(&s, 0, s.n);

        nta_topk *seq = nta_topk_create(m);
        assert_non_null(seq);
        for (int p = 0; p < PANES; p++)
            nta_topk_merge(seq, pane[p]);
        check_bounds(seq, exact, s.universe, m, 10);

        /* ((0 1) (2 3)) (4 5), into copies so the panes stay intact. */
        nta_topk *pair[3];
        for (int i = 0; i < 3; i++) {
            pair[i] = nta_topk_create(m);
            assert_non_null(pair[i]);
            nta_topk_merge(pair[i], pane[2 * i]);
            nta_topk_merge(pair[i], pane[2 * i + 1]);
        }
        nta_topk_merge(pair[0], pair[1]);
        nta_topk_merge(pair[0], pair[2]);
        check_bounds(pair[0], exact, s.universe, m, 10);

        /* Adding to a merged summary keeps the bounds too. */
        stream more = zipf_stream(30000, 8000, 1.2, 1500, seed + 100);
        add_range(seq, &more, 0, more.n);
        for (size_t i = 0; i < more.n; i++)
            exact[more.item[i]] += more.weight[i];
        check_bounds(seq, exact, s.universe, m, 10);

        /* The single summary over everything agrees within both bounds. */
        nta_topk *one = nta_topk_create(m);
        assert_non_null(one);
        add_range(one, &s, 0, s.n);
        add_range(one, &more, 0, more.n);
        check_bounds(one, exact, s.universe, m, 10);
        nta_topk_item a[10], b[10];
        assert_int_equal(nta_topk_items(one, a, 10), 10);
        assert_int_equal(nta_topk_items(seq, b, 10), 10);
        for (int i = 0; i < 10; i++) {
            uint32_t x = item_of(&a[i].key);
            for (int j = 0; j < 10; j++)
                if (item_of(&b[j].key) == x) {
                    assert_true(a[i].value - a[i].error <= b[j].value);
                    assert_true(b[j].value - b[j].error <= a[i].value);
                }
        }
        nta_topk_destroy(one);
        stream_free(&more);
        for (int i = 0; i < 3; i++)
            nta_topk_destroy(pair[i]);
        nta_topk_destroy(seq);
        for (int p = 0; p < PANES; p++)
            nta_topk_destroy(pane[p]);
        free(exact);
        stream_free(&s);
    }
}

/* Fewer distinct items than counters: everything is exact. */
static void test_exact_below_capacity(void **state)
{
    (void)state;
    stream s = zipf_stream(5000, 50, 1.0, 100, 3);
    uint64_t *exact = exact_range(&s, 0, s.n);
    nta_topk *t = nta_topk_create(64);
    assert_non_null(t);
    add_range(t, &s, 0, s.n);
    assert_int_equal(nta_topk_floor(t), 0);
    nta_topk_item items[64];
    size_t n = nta_topk_items(t, items, 64);
    size_t distinct = 0;
    for (uint32_t x = 0; x < s.universe; x++)
        distinct += exact[x] > 0;
    assert_int_equal(n, distinct);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i].value, exact[item_of(&items[i].key)]);
        assert_int_equal(items[i].error, 0);
    }
    /* Merging two such summaries is exact as well. */
    nta_topk *u = nta_topk_create(64);
    assert_non_null(u);
    nta_topk_merge(u, t);
    nta_topk_merge(u, t);
    assert_int_equal(nta_topk_items(u, items, 64), distinct);
    for (size_t i = 0; i < distinct; i++) {
        assert_int_equal(items[i].value, 2 * exact[item_of(&items[i].key)]);
        assert_int_equal(items[i].error, 0);
    }
    nta_topk_destroy(u);
    nta_topk_destroy(t);
    free(exact);
    stream_free(&s);
}

/* A hash of 2 bits: long probe chains through the index. Results must equal
 * those with a good hash (the summary's decisions do not depend on it). */
static void test_index_collisions(void **state)
{
    (void)state;
    stream s = zipf_stream(60000, 3000, 0.9, 1000, 4);
    nta_topk *good = nta_topk_create(128), *bad = nta_topk_create(128);
    assert_non_null(good);
    assert_non_null(bad);
    add_range(good, &s, 0, s.n);
    hash_mask = 3;
    add_range(bad, &s, 0, s.n);
    hash_mask = UINT64_MAX;
    nta_topk_item a[128], b[128];
    assert_int_equal(nta_topk_items(good, a, 128), 128);
    assert_int_equal(nta_topk_items(bad, b, 128), 128);
    assert_memory_equal(a, b, sizeof a);
    uint64_t *exact = exact_range(&s, 0, s.n);
    check_bounds(bad, exact, s.universe, 128, 10);
    free(exact);
    nta_topk_destroy(good);
    nta_topk_destroy(bad);
    stream_free(&s);
}

/* Worst cases for counter summaries: all distinct, and rising weights. */
static void test_adversarial(void **state)
{
    (void)state;
    stream s = {.n = 20000, .universe = 20000};
    s.item = malloc(s.n * sizeof *s.item);
    s.weight = malloc(s.n * sizeof *s.weight);
    assert_non_null(s.item);
    assert_non_null(s.weight);
    for (size_t i = 0; i < s.n; i++) {
        s.item[i] = (uint32_t)i;
        s.weight[i] = 1 + i / 100;
    }
    uint64_t *exact = exact_range(&s, 0, s.n);
    nta_topk *t = nta_topk_create(64);
    assert_non_null(t);
    add_range(t, &s, 0, s.n);
    check_bounds(t, exact, s.universe, 64, 10);
    nta_topk_destroy(t);
    free(exact);
    stream_free(&s);
}

static void test_items_order_and_limits(void **state)
{
    (void)state;
    /* Capacity is clamped. */
    nta_topk *t = nta_topk_create(1);
    assert_non_null(t);
    assert_int_equal(nta_topk_capacity(t), NTA_TOPK_MIN_CAPACITY);
    nta_topk_destroy(t);
    t = nta_topk_create(UINT32_MAX);
    assert_non_null(t);
    assert_int_equal(nta_topk_capacity(t), NTA_TOPK_MAX_CAPACITY);
    nta_topk_destroy(t);
    nta_topk_destroy(NULL);

    t = nta_topk_create(16);
    assert_non_null(t);
    nta_topk_item items[16];
    assert_int_equal(nta_topk_items(t, items, 16), 0);
    assert_int_equal(nta_topk_total(t), 0);
    /* Weight 0 is nothing. */
    nta_topk_key k = key_of(5);
    nta_topk_add(t, &k, 5, 0);
    assert_int_equal(nta_topk_size(t), 0);
    /* Ties come out by key, whatever the order of arrival. */
    static const uint32_t order[] = {9, 3, 7, 1, 5};
    for (int i = 0; i < 5; i++) {
        k = key_of(order[i]);
        nta_topk_add(t, &k, order[i], 10);
    }
    k = key_of(4);
    nta_topk_add(t, &k, 4, 11);
    assert_int_equal(nta_topk_items(t, items, 3), 3);
    assert_int_equal(item_of(&items[0].key), 4);
    assert_int_equal(item_of(&items[1].key), 1);
    assert_int_equal(item_of(&items[2].key), 3);
    assert_int_equal(nta_topk_items(t, items, 0), 0);
    assert_int_equal(nta_topk_items(t, items, 16), 6);
    assert_int_equal(item_of(&items[5].key), 9);
    assert_int_equal(nta_topk_total(t), 61);
    size_t small = nta_topk_bytes(t);

    /* Clear empties it and gives back the grown memory. */
    stream s = zipf_stream(10000, 1000, 1.0, 10, 5);
    add_range(t, &s, 0, s.n);
    assert_true(nta_topk_bytes(t) > small);
    nta_topk_clear(t);
    assert_int_equal(nta_topk_size(t), 0);
    assert_int_equal(nta_topk_total(t), 0);
    assert_int_equal(nta_topk_floor(t), 0);
    assert_int_equal(nta_topk_bytes(t), small);
    add_range(t, &s, 0, s.n);
    uint64_t *exact = exact_range(&s, 0, s.n);
    check_bounds(t, exact, s.universe, 16, 3);
    free(exact);
    stream_free(&s);
    nta_topk_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zipf_single),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_exact_below_capacity),
        cmocka_unit_test(test_index_collisions),
        cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_items_order_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
