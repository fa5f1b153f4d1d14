/* Unit tests of the window lane (runtime/lane.c).
 *
 * Two copies of the same windows get the same records: one copy is fed on
 * the test's thread only (the reference), the other as the pipeline feeds
 * it, with the windows of a mask added to by the lane and the rest here.
 * The records come from several partitions, some late, each taken by a
 * random subset of the windows (as filters would); the lane is drained and
 * both copies closed at the same watermarks, and the mask changes between
 * rounds. Every result of every close must be the same text, in the same
 * order, in both copies: the window engine itself is checked against a
 * batch computation in test_window.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "lane.h"
#include "output.h"
#include "window.h"

#define NWIN 5

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static nta_window_spec spec(const char *name, int64_t size, int64_t slide)
{
    nta_window_spec sp;
    memset(&sp, 0, sizeof sp);
    snprintf(sp.name, sizeof sp.name, "%s", name);
    sp.size_ms = size;
    sp.slide_ms = slide;
    sp.max_keys = 100000;
    return sp;
}

static void agg(nta_window_spec *sp, nta_agg_kind k, nta_field f, nta_field by)
{
    sp->aggs[sp->naggs].kind = k;
    sp->aggs[sp->naggs].field = f;
    sp->aggs[sp->naggs].by = by;
    if (k == NTA_AGG_TOPK)
        sp->aggs[sp->naggs].k = 5;
    sp->naggs++;
}

static void make_specs(nta_window_spec *sp)
{
    sp[0] = spec("by_src", 6000, 2000);
    sp[0].key[sp[0].nkeys++] = NTA_F_SRC_IP;
    agg(&sp[0], NTA_AGG_SUM, NTA_F_BYTES, NTA_F_NONE);
    agg(&sp[0], NTA_AGG_DISTINCT, NTA_F_DST_PORT, NTA_F_NONE);
    sp[1] = spec("pairs", 3000, 3000);
    sp[1].key[sp[1].nkeys++] = NTA_F_SRC_IP;
    sp[1].key[sp[1].nkeys++] = NTA_F_DST_IP;
    agg(&sp[1], NTA_AGG_DISTINCT, NTA_F_DST_PORT, NTA_F_NONE);
    sp[2] = spec("talkers", 4000, 1000);
    agg(&sp[2], NTA_AGG_TOPK, NTA_F_SRC_IP, NTA_F_BYTES);
    sp[3] = spec("by_proto", 2000, 2000);
    sp[3].key[sp[3].nkeys++] = NTA_F_PROTO;
    agg(&sp[3], NTA_AGG_MAX, NTA_F_PACKETS, NTA_F_NONE);
    sp[4] = spec("sizes", 5000, 1000);
    sp[4].aggs[0].kind = NTA_AGG_QUANTILE;
    sp[4].aggs[0].field = NTA_F_BYTES;
    sp[4].aggs[0].nq = 1;
    sp[4].aggs[0].q[0] = 0.5;
    sp[4].naggs = 1;
}

/* Every result as text, with the input partition it came from (which the
 * output leaves out), in emission order, one buffer per copy. */
static void collect(void *ctx, const nta_result *res)
{
    nta_buf *b = ctx;
    nta_output_result_json(b, res);
    nta_buf_printf(b, " partition %d\n", (int)res->partition);
}

static void make_record(nta_record *r, int64_t ts)
{
    memset(r, 0, sizeof *r);
    r->ts_ms = ts;
    nta_addr_from_v4(&r->src, 0x0a000000u + (uint32_t)(rnd() % 40));
    nta_addr_from_v4(&r->dst, 0xc0a80000u + (uint32_t)(rnd() % 25));
    r->dst_port = (uint16_t)(rnd() % 700);
    r->proto = rnd() % 3 ? 6 : 17;
    r->bytes = 40 + rnd() % 1500;
    r->packets = 1 + rnd() % 9;
}

static void test_lane_matches_one_thread(void **state)
{
    (void)state;
    nta_window_spec sp[NWIN];
    make_specs(sp);
    nta_window *ref[NWIN], *win[NTA_MAX_WINDOWS] = {0};
    for (int i = 0; i < NWIN; i++) {
        char err[256];
        assert_int_equal(nta_window_spec_check(&sp[i], err, sizeof err), 0);
        ref[i] = nta_window_create(&sp[i]);
        win[i] = nta_window_create(&sp[i]);
        assert_non_null(ref[i]);
        assert_non_null(win[i]);
    }
    nta_lane *l = nta_lane_create();
    assert_non_null(l);
    nta_buf want = {0}, got = {0};
    static const uint32_t masks[] = {0x15, 0x0a, 0x1f, 0x00, 0x03, 0x1c};
    int64_t now = 1700000000000, wm = now - 10000;
    int32_t part;
    size_t late = 0;
    for (size_t round = 0; round < 30; round++) {
        uint32_t mask = masks[round % (sizeof masks / sizeof masks[0])];
        nta_lane_set_windows(l, win, mask);
        /* A partition per round, mostly: a window of one round's records
         * says which; one of several says -2. */
        part = (int32_t)(round % 4) - 1;
        for (int n = 0; n < 20000; n++) {
            if (rnd() % 9973 == 0)
                part = (int32_t)(rnd() % 4) - 1;
            /* Mostly in order, some far behind the watermark (late). */
            int64_t ts = now - (int64_t)(rnd() % 1500);
            if (rnd() % 50 == 0)
                ts = wm - 1 - (int64_t)(rnd() % 5000);
            if (ts > now)
                now = ts;
            now += rnd() % 3;
            nta_record r;
            make_record(&r, ts);
            uint32_t take = (uint32_t)rnd() & 0x1f;
            for (int i = 0; i < NWIN; i++) {
                if (!(take & (1u << i)))
                    continue;
                nta_window_set_input(ref[i], part);
                late += nta_window_add(ref[i], &r) == 1;
            }
            nta_lane_push(l, &r, part, take);
            for (int i = 0; i < NWIN; i++) {
                if ((mask & (1u << i)) || !(take & (1u << i)))
                    continue;
                nta_window_set_input(win[i], part);
                nta_window_add(win[i], &r);
            }
        }
        nta_lane_drain(l);
        /* Drained means every queued record is in: before any close. */
        for (int i = 0; i < NWIN; i++) {
            nta_window_stats a, b;
            nta_window_get_stats(ref[i], &a);
            nta_window_get_stats(win[i], &b);
            assert_int_equal(a.added + a.late, b.added + b.late);
        }
        wm = now - 2000;
        for (int i = 0; i < NWIN; i++) {
            nta_window_advance(ref[i], wm, collect, &want);
            nta_window_advance(win[i], wm, collect, &got);
        }
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
    }
    assert_true(late > 0);
    assert_int_equal(nta_lane_take_nomem(l), 0);
    for (int i = 0; i < NWIN; i++) {
        nta_window_flush(ref[i], collect, &want);
        nta_window_flush(win[i], collect, &got);
        nta_window_stats a, b;
        nta_window_get_stats(ref[i], &a);
        nta_window_get_stats(win[i], &b);
        assert_int_equal(a.added, b.added);
        assert_int_equal(a.late, b.late);
    }
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    nta_lane_destroy(l);
    for (int i = 0; i < NWIN; i++) {
        nta_window_destroy(ref[i]);
        nta_window_destroy(win[i]);
    }
    nta_buf_free(&want);
    nta_buf_free(&got);
}

/* A lane destroyed with records still queued adds them first. */
static void test_destroy_drains(void **state)
{
    (void)state;
    nta_window_spec sp = spec("count", 1000, 1000);
    nta_window *win[NTA_MAX_WINDOWS] = {0};
    win[0] = nta_window_create(&sp);
    assert_non_null(win[0]);
    for (int round = 0; round < 20; round++) {
        nta_lane *l = nta_lane_create();
        assert_non_null(l);
        nta_lane_set_windows(l, win, 1);
        nta_record r;
        make_record(&r, 1700000000000 + round);
        for (int n = 0; n < 1000; n++)
            nta_lane_push(l, &r, 0, 1);
        nta_lane_destroy(l);
        nta_window_stats st;
        nta_window_get_stats(win[0], &st);
        assert_int_equal(st.added, 1000 * (uint64_t)(round + 1));
    }
    nta_window_destroy(win[0]);
    nta_lane_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lane_matches_one_thread),
        cmocka_unit_test(test_destroy_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
