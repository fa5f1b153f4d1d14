/* The commit tracker: a partition's commit point is the smallest offset still
 * needed by an open window, or one past the last offset seen. Expected values
 * are worked out by hand in each test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "offsets.h"

static void test_nothing_tracked(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    assert_int_equal(nta_offsets_commit_point(o, 0), -1);
    assert_int_equal(nta_offsets_commit_point(o, 7), -1);
    nta_offsets_destroy(o);
}

static void test_records_not_needed_commit_past_them(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    for (int64_t off = 100; off < 110; off++)
        nta_offsets_track(o, 0, off, INT64_MIN);
    assert_int_equal(nta_offsets_commit_point(o, 0), 110);
    nta_offsets_destroy(o);
}

static void test_open_windows_hold_the_commit_point(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    /* offsets 0..2 needed until 10 s, 3..4 until 20 s, 5 until 10 s again
     * (out of order in time), 6 not needed at all */
    nta_offsets_track(o, 0, 0, 10000);
    nta_offsets_track(o, 0, 1, 10000);
    nta_offsets_track(o, 0, 2, 10000);
    nta_offsets_track(o, 0, 3, 20000);
    nta_offsets_track(o, 0, 4, 20000);
    nta_offsets_track(o, 0, 5, 10000);
    nta_offsets_track(o, 0, 6, INT64_MIN);
    assert_int_equal(nta_offsets_commit_point(o, 0), 0);
    nta_offsets_release(o, 9999);
    assert_int_equal(nta_offsets_commit_point(o, 0), 0);
    nta_offsets_release(o, 10000);
    assert_int_equal(nta_offsets_commit_point(o, 0), 3);
    nta_offsets_release(o, 20000);
    assert_int_equal(nta_offsets_commit_point(o, 0), 7);
    nta_offsets_destroy(o);
}

static void test_late_arrival_in_time_keeps_older_offset(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    nta_offsets_track(o, 0, 10, 30000);
    nta_offsets_track(o, 0, 11, 20000); /* an earlier window, later offset */
    nta_offsets_release(o, 20000);
    assert_int_equal(nta_offsets_commit_point(o, 0), 10);
    nta_offsets_release(o, 30000);
    assert_int_equal(nta_offsets_commit_point(o, 0), 12);
    nta_offsets_destroy(o);
}

static void test_partitions_are_independent(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    nta_offsets_track(o, 2, 50, 10000);
    nta_offsets_track(o, 0, 7, INT64_MIN);
    assert_int_equal(nta_offsets_partitions(o), 3);
    assert_int_equal(nta_offsets_commit_point(o, 0), 8);
    assert_int_equal(nta_offsets_commit_point(o, 1), -1);
    assert_int_equal(nta_offsets_commit_point(o, 2), 50);
    nta_offsets_forget(o, 2);
    assert_int_equal(nta_offsets_commit_point(o, 2), -1);
    nta_offsets_destroy(o);
}

static void test_many_done_times(void **state)
{
    (void)state;
    nta_offsets *o = nta_offsets_create();
    for (int64_t i = 0; i < 10000; i++)
        nta_offsets_track(o, 1, i, (i / 10) * 1000);
    nta_offsets_release(o, 499000);
    assert_int_equal(nta_offsets_commit_point(o, 1), 5000);
    nta_offsets_release(o, INT64_MAX);
    assert_int_equal(nta_offsets_commit_point(o, 1), 10000);
    nta_offsets_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_tracked),
        cmocka_unit_test(test_records_not_needed_commit_past_them),
        cmocka_unit_test(test_open_windows_hold_the_commit_point),
        cmocka_unit_test(test_late_arrival_in_time_keeps_older_offset),
        cmocka_unit_test(test_partitions_are_independent),
        cmocka_unit_test(test_many_done_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
