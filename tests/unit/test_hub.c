/* The dashboard's store (runtime/hub.c) without a server: events in through
 * the tap function, out through the push cursor, the API answers and the
 * metrics text. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hub.h"

static nta_hub *hub_new(size_t history_bytes, size_t max_lag)
{
    nta_hub_conf c = {.history_ms = 15 * 60 * 1000, .history_bytes = history_bytes,
                      .max_client_lag = max_lag};
    nta_hub *h = nta_hub_create(&c);
    assert_non_null(h);
    return h;
}

/* A window result as output.c writes it. */
static void result(nta_hub *h, const char *window, int64_t end, int key, uint64_t count)
{
    char js[256];
    int n = snprintf(js, sizeof js,
                     "{\"type\":\"window\",\"window\":\"%s\",\"start\":%lld,\"end\":%lld,"
                     "\"start_time\":\"x\",\"end_time\":\"y\",\"key\":{\"src_ip\":\"k%d\"},"
                     "\"count\":%llu,\"sum_bytes\":%llu}",
                     window, (long long)(end - 1000), (long long)end, key,
                     (unsigned long long)count, (unsigned long long)(1000 - count));
    nta_hub_publish(h, NTA_EVENT_WINDOW, js, (size_t)n);
}

static int count_of(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* Everything the push channel has for a new client, as text. */
static void drain(nta_hub *h, nta_hub_cursor *c, nta_buf *out)
{
    int64_t closes[64];
    int nclose;
    while (nta_hub_next(h, c, out, 1 << 20, 0, closes, 64, &nclose) > 0)
        ;
}

static void test_results_share_their_close_time(void **state)
{
    (void)state;
    nta_hub *h = hub_new(1 << 20, 1000);
    for (int k = 0; k < 3; k++)
        result(h, "traffic", 10000, k, 5);
    nta_hub_flush(h);
    nta_buf b = {0};
    nta_hub_windows_json(h, "traffic", INT64_MIN, 100, &b);
    const char *s = nta_buf_cstr(&b);
    assert_int_equal(count_of(s, "\"closed_at_us\":"), 3);
    const char *first = strstr(s, "\"closed_at_us\":");
    char stamp[40];
    memcpy(stamp, first, 32);
    stamp[32] = '\0';
    assert_int_equal(count_of(s, stamp), 3);
    nta_buf_reset(&b);
    nta_hub_windows_json(h, "traffic", 10000, 100, &b);
    assert_string_equal(nta_buf_cstr(&b), "{\"window\":\"traffic\",\"results\":[],\"truncated\":false}");
    nta_buf_reset(&b);
    nta_hub_windows_json(h, "traffic", INT64_MIN, 2, &b);
    assert_int_equal(count_of(nta_buf_cstr(&b), "\"type\":\"window\""), 2);
    assert_non_null(strstr(nta_buf_cstr(&b), "\"truncated\":true"));
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static void test_wide_window_keeps_its_latest_close_and_pushes_top_frames(void **state)
{
    (void)state;
    nta_hub *h = hub_new(64 << 20, 1000000);
    for (int end = 1; end <= 3; end++) {
        for (int k = 0; k < 150; k++)
            result(h, "by_src", end * 10000, k, (uint64_t)k);
        result(h, "traffic", end * 10000, 0, 1);
        nta_hub_flush(h);
    }
    nta_buf b = {0};
    nta_hub_windows_json(h, "by_src", INT64_MIN, 100000, &b);
    /* Earlier closes are gone; the latest is kept whole. */
    assert_int_equal(count_of(nta_buf_cstr(&b), "\"type\":\"window\""), 150);
    assert_int_equal(count_of(nta_buf_cstr(&b), "\"end\":20000"), 0);
    nta_buf_reset(&b);

    nta_hub_cursor c = {0};
    drain(h, &c, &b);
    const char *s = nta_buf_cstr(&b);
    /* A page gets the narrow window's results and one top frame (the
     * latest), not the wide window's results. */
    assert_int_equal(count_of(s, "event: top\n"), 1);
    assert_int_equal(count_of(s, "event: window\ndata: {\"closed_at_us\":"), 3);
    const char *top = strstr(s, "event: top\n");
    assert_non_null(strstr(top, "\"end\":30000"));
    assert_non_null(strstr(top, "\"results_total\":150"));
    /* The first 20 by count (k130..k149) and by sum_bytes (k0..k19). */
    assert_non_null(strstr(top, "\"k149\""));
    assert_non_null(strstr(top, "\"k0\""));
    assert_null(strstr(top, "\"k75\""));
    nta_buf_reset(&b);

    nta_hub_cursor full = {.full = 1};
    drain(h, &full, &b);
    assert_int_equal(count_of(nta_buf_cstr(&b), "\"window\":\"by_src\",\"start\""), 150 + 40);
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static void closed(nta_hub *h, const char *window)
{
    nta_hub_publish(h, NTA_EVENT_CLOSED, window, strlen(window));
}

/* The pipeline's end-of-close event completes a wide close: its top frame
 * goes out without waiting for the runner's next nta_hub_flush. Until then
 * readers get the close's results only in batches. */
static void test_a_close_is_pushed_when_the_pipeline_says_it_is_complete(void **state)
{
    (void)state;
    nta_hub *h = hub_new(64 << 20, 1000000);
    nta_hub_cursor page = {0}, full = {.full = 1};
    nta_buf b = {0};
    nta_hub_cursor_newest(h, &page);
    nta_hub_cursor_newest(h, &full);
    for (int end = 1; end <= 2; end++) {
        for (int k = 0; k < 1000; k++)
            result(h, "by_src", end * 10000, k, (uint64_t)k);
        nta_buf_reset(&b);
        drain(h, &page, &b);
        assert_null(strstr(nta_buf_cstr(&b), "event: top\n"));
        nta_buf_reset(&b);
        drain(h, &full, &b);
        int early = count_of(nta_buf_cstr(&b), "\"window\":\"by_src\",\"start\"");
        assert_true(early >= 1 && early < 1000);

        closed(h, "by_src");
        nta_buf_reset(&b);
        drain(h, &page, &b);
        const char *s = nta_buf_cstr(&b);
        assert_int_equal(count_of(s, "event: top\n"), 1);
        assert_non_null(strstr(s, "\"results_total\":1000"));
        assert_non_null(strstr(s, "\"k999\""));
        if (end == 2) /* a window known to be wide: pages get its top frame only */
            assert_int_equal(count_of(s, "event: window\n"), 0);
        nta_buf_reset(&b);
        drain(h, &full, &b);
        s = nta_buf_cstr(&b);
        assert_int_equal(count_of(s, "event: window\n") + early, 1000);
        assert_int_equal(count_of(s, "event: top\n"), 1);
    }
    /* A narrow window's results all go out with its close. */
    for (int k = 0; k < 3; k++)
        result(h, "traffic", 20000, k, 1);
    closed(h, "traffic");
    nta_buf_reset(&b);
    drain(h, &page, &b);
    assert_int_equal(count_of(nta_buf_cstr(&b), "\"window\":\"traffic\""), 3);
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static void test_history_is_bounded_and_evictions_counted(void **state)
{
    (void)state;
    nta_hub *h = hub_new(4096, 1000000);
    for (int i = 0; i < 100; i++)
        result(h, "traffic", 1000 * (i + 1), 0, 1);
    nta_buf b = {0};
    nta_hub_metrics(h, &b);
    const char *m = nta_buf_cstr(&b);
    const char *ev = strstr(m, "\nnta_http_history_evicted_total ");
    assert_non_null(ev);
    assert_true(atoi(ev + strlen("\nnta_http_history_evicted_total ")) > 50);
    const char *by = strstr(m, "\nnta_http_history_bytes ");
    assert_true(atoi(by + strlen("\nnta_http_history_bytes ")) <= 4096);
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static void test_a_client_that_falls_behind_is_dropped(void **state)
{
    (void)state;
    nta_hub *h = hub_new(1 << 20, 10);
    nta_hub_cursor c = {0};
    nta_buf b = {0};
    result(h, "traffic", 1000, 0, 1);
    drain(h, &c, &b);
    assert_true(c.live);
    for (int i = 0; i < 20; i++)
        result(h, "traffic", 1000 * (i + 2), 0, 1);
    int64_t closes[4];
    int nclose;
    assert_int_equal(nta_hub_next(h, &c, &b, 1 << 20, 0, closes, 4, &nclose), -1);
    /* A new client starts from the history, whatever its size. */
    nta_hub_cursor fresh = {0};
    assert_true(nta_hub_next(h, &fresh, &b, 1 << 20, 0, closes, 4, &nclose) > 0);
    nta_hub_stop(h);
    assert_int_equal(nta_hub_next(h, &fresh, &b, 1 << 20, 0, closes, 4, &nclose), -2);
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static void test_alerts_and_reloads_are_counted(void **state)
{
    (void)state;
    nta_hub *h = hub_new(1 << 20, 1000);
    const char *a = "{\"type\":\"alert\",\"rule\":\"scan\",\"severity\":\"warning\","
                    "\"state\":\"raised\",\"key\":{\"src_ip\":\"1.2.3.4\"},\"value\":500,"
                    "\"end\":20000,\"detection_latency_ms\":1500}";
    nta_hub_publish(h, NTA_EVENT_ALERT, a, strlen(a));
    const char *r = "{\"type\":\"reload\",\"ok\":false,\"error\":\"x.lua:1: oops\"}";
    nta_hub_publish(h, NTA_EVENT_RELOAD, r, strlen(r));
    nta_buf b = {0};
    nta_hub_metrics(h, &b);
    const char *m = nta_buf_cstr(&b);
    assert_non_null(strstr(m, "nta_alerts_total{rule=\"scan\",severity=\"warning\",state=\"raised\"} 1\n"));
    assert_non_null(strstr(m, "nta_reloads_total{outcome=\"error\"} 1\n"));
    assert_non_null(strstr(m, "nta_detection_latency_seconds_bucket{rule=\"scan\",le=\"2.5\"} 1\n"));
    assert_non_null(strstr(m, "nta_detection_latency_seconds_bucket{rule=\"scan\",le=\"1\"} 0\n"));
    nta_buf_reset(&b);
    nta_hub_alerts_json(h, 0, &b);
    assert_non_null(strstr(nta_buf_cstr(&b), "\"rule\":\"scan\""));
    nta_buf_reset(&b);
    nta_hub_alerts_json(h, 20000, &b);
    assert_string_equal(nta_buf_cstr(&b), "{\"alerts\":[]}");
    nta_buf_reset(&b);
    nta_hub_rules_json(h, &b);
    assert_non_null(strstr(nta_buf_cstr(&b), "\"last_reload\":{\"type\":\"reload\",\"ok\":false"));
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

static int reload_ok(void *ctx, char *out, size_t len)
{
    (*(int *)ctx)++;
    snprintf(out, len, "{\"ok\":true,\"generation\":2}");
    return 0;
}

typedef struct requester {
    nta_hub *h;
    int rc;
    nta_buf out;
} requester;

static void *request_reload(void *arg)
{
    requester *r = arg;
    r->rc = nta_hub_reload(r->h, 10000, &r->out);
    return NULL;
}

static void test_reload_runs_on_the_servicing_thread(void **state)
{
    (void)state;
    nta_hub *h = hub_new(1 << 20, 1000);
    nta_buf b = {0};
    assert_int_equal(nta_hub_reload(h, 100, &b), -2);
    nta_hub_set_reload_available(h, 1);
    requester r = {.h = h};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, request_reload, &r), 0);
    int calls = 0;
    /* The pipeline thread's loop: serve requests until one was answered. */
    while (calls == 0)
        nta_hub_service_reload(h, reload_ok, &calls);
    pthread_join(t, NULL);
    assert_int_equal(r.rc, 0);
    assert_string_equal(nta_buf_cstr(&r.out), "{\"ok\":true,\"generation\":2}");
    assert_int_equal(calls, 1);
    nta_buf_free(&r.out);
    nta_buf_free(&b);
    nta_hub_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_share_their_close_time),
        cmocka_unit_test(test_wide_window_keeps_its_latest_close_and_pushes_top_frames),
        cmocka_unit_test(test_a_close_is_pushed_when_the_pipeline_says_it_is_complete),
        cmocka_unit_test(test_history_is_bounded_and_evictions_counted),
        cmocka_unit_test(test_a_client_that_falls_behind_is_dropped),
        cmocka_unit_test(test_alerts_and_reloads_are_counted),
        cmocka_unit_test(test_reload_runs_on_the_servicing_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
