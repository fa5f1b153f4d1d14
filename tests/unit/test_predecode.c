/* Unit tests of decoding ahead (runtime/predecode.c).
 *
 * The record of every item must be the one a plain nta_decode of that
 * payload gives, whichever thread decoded it, for batches of every size
 * around the chunk length, many times over (the two threads race for
 * chunks differently each time); CSV lines and items without a payload are
 * handed back to be decoded in order. Items handed over for release are
 * released once each, never before the caller is done with them, and all
 * of them before the batch ends. */
#define _DEFAULT_SOURCE /* usleep */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "predecode.h"

static void test_in_order_payloads(void **state)
{
    (void)state;
    nta_decoder d;
    nta_decoder_init(&d, NTA_FMT_AUTO);
    static const struct {
        const char *s;
        int in_order;
    } cases[] = {
        {"{\"src_ip\":\"10.0.0.1\",\"dst_ip\":\"10.0.0.2\"}", 0},
        {"  \n{\"src_ip\":\"10.0.0.1\"}", 0},
        {"\xEF\xBB\xBF{}", 0},
        {"[1,2]", 0},
        {"\x08\x01\x10", 0}, /* binary: never CSV */
        {"", 0},
        {"   ", 0},
        {"10.0.0.1,10.0.0.2,100", 1},
        {"\xEF\xBB\xBFsrc_ip,dst_ip,bytes", 1},
        {" ts,src_ip,dst_ip", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(nta_decode_in_order(&d, cases[i].s, strlen(cases[i].s)),
                         cases[i].in_order);
    nta_decoder_init(&d, NTA_FMT_JSON);
    assert_int_equal(nta_decode_in_order(&d, "10.0.0.1,10.0.0.2,1", 19), 0);
    nta_decoder_init(&d, NTA_FMT_CSV);
    assert_int_equal(nta_decode_in_order(&d, "{}", 2), 1);
}

/* Payload i of a batch: mostly good JSON, with malformed JSON, CSV lines,
 * blanks and missing payloads (a consumer error in the batch) among them. */
static void make_payload(unsigned i, char *buf, size_t len, const char **p, size_t *n)
{
    switch (i % 11) {
    case 3:
        snprintf(buf, len, "{\"src_ip\":\"10.0.%u.1\",\"bytes\":", i % 256);
        break;
    case 5:
        snprintf(buf, len, "10.1.%u.1,10.2.0.%u,%u", i % 256, i % 200, i);
        break;
    case 7:
        snprintf(buf, len, "  ");
        break;
    case 9:
        *p = NULL;
        *n = 0;
        return;
    default:
        snprintf(buf, len,
                 "{\"ts\":%u,\"src_ip\":\"10.0.%u.%u\",\"dst_ip\":\"192.168.1.%u\","
                 "\"dst_port\":%u,\"proto\":6,\"bytes\":%u}",
                 1700000000u + i, i % 256, i % 97, i % 250, i % 65536, i * 7);
    }
    *p = buf;
    *n = strlen(buf);
}

static void test_batches_match_plain_decoding(void **state)
{
    (void)state;
    nta_decoder proto;
    nta_decoder_init(&proto, NTA_FMT_AUTO);
    nta_predecode *pd = nta_predecode_create(&proto);
    assert_non_null(pd);
    static char bufs[NTA_PREDECODE_MAX][160];
    static const char *payloads[NTA_PREDECODE_MAX];
    static size_t lens[NTA_PREDECODE_MAX];
    static const size_t sizes[] = {1, 2, 63, 64, 65, 127, 128, 129, 1000, NTA_PREDECODE_MAX};
    unsigned seq = 0;
    for (int round = 0; round < 40; round++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            for (size_t i = 0; i < n; i++)
                make_payload(seq++, bufs[i], sizeof bufs[i], &payloads[i], &lens[i]);
            nta_predecode_begin(pd, payloads, lens, n, NULL, NULL);
            /* Some rounds skip items, as the runner does for messages that
             * carry an error or an end of partition. */
            size_t step = 1 + (size_t)(round % 3);
            for (size_t i = 0; i < n; i += step) {
                const nta_decoded *d = nta_predecode_get(pd, i);
                if (payloads[i] == NULL || nta_decode_in_order(&proto, payloads[i], lens[i])) {
                    assert_int_equal(d->status, NTA_PREDECODE_IN_ORDER);
                    continue;
                }
                nta_decoder plain;
                nta_decoder_init(&plain, NTA_FMT_AUTO);
                nta_record want;
                nta_decode_status st = nta_decode(&plain, payloads[i], lens[i], &want);
                assert_int_equal(d->status, (int)st);
                if (st == NTA_DEC_OK)
                    assert_memory_equal(&d->rec, &want, sizeof want);
            }
            nta_predecode_end(pd);
        }
    }
    nta_predecode_destroy(pd);
}

/* A batch nobody reads from (every message an error) still ends. */
static void test_batch_never_read(void **state)
{
    (void)state;
    nta_decoder proto;
    nta_decoder_init(&proto, NTA_FMT_JSON);
    nta_predecode *pd = nta_predecode_create(&proto);
    assert_non_null(pd);
    const char *payloads[300] = {0};
    size_t lens[300] = {0};
    for (int round = 0; round < 50; round++) {
        nta_predecode_begin(pd, payloads, lens, 300, NULL, NULL);
        nta_predecode_end(pd);
    }
    nta_predecode_destroy(pd);
    nta_predecode_destroy(NULL);
}

/* What the release test's callback sees: the items the caller is done with
 * (set before it says so), and how often each item was released. */
static _Atomic size_t done_upto;
static _Atomic int release_early;
static _Atomic int release_count[NTA_PREDECODE_MAX];
static pthread_t caller;
static _Atomic size_t helper_releases;

static void count_release(void *item)
{
    size_t i = (size_t)((_Atomic int *)item - release_count);
    if (i >= atomic_load(&done_upto))
        atomic_store(&release_early, 1);
    if (!pthread_equal(pthread_self(), caller)) {
        /* The helper's: now and then slow, so that a batch's end finds a
         * chunk still in its hands and must wait for it. */
        if (atomic_fetch_add(&helper_releases, 1) % 61 == 0)
            usleep(200);
    }
    atomic_fetch_add((_Atomic int *)item, 1);
}

static void test_release(void **state)
{
    (void)state;
    nta_decoder proto;
    nta_decoder_init(&proto, NTA_FMT_JSON);
    nta_predecode *pd = nta_predecode_create(&proto);
    assert_non_null(pd);
    static char bufs[NTA_PREDECODE_MAX][160];
    static const char *payloads[NTA_PREDECODE_MAX];
    static size_t lens[NTA_PREDECODE_MAX];
    static void *items[NTA_PREDECODE_MAX];
    for (size_t i = 0; i < NTA_PREDECODE_MAX; i++)
        items[i] = &release_count[i];
    static const size_t sizes[] = {1, 63, 64, 65, 300, 1000, NTA_PREDECODE_MAX};
    unsigned seq = 0;
    caller = pthread_self();
    for (int round = 0; round < 30; round++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            for (size_t i = 0; i < n; i++) {
                make_payload(seq++, bufs[i], sizeof bufs[i], &payloads[i], &lens[i]);
                atomic_store(&release_count[i], 0);
            }
            atomic_store(&done_upto, 0);
            nta_predecode_begin(pd, payloads, lens, n, items, count_release);
            /* Rounds differ in how often the caller says how far it is,
             * as the runner does not for messages it skips. */
            size_t step = 1 + (size_t)(round % 5) * 17;
            for (size_t i = 0; i < n; i++) {
                if (payloads[i] != NULL)
                    nta_predecode_get(pd, i);
                if ((i + 1) % step == 0) {
                    atomic_store(&done_upto, i + 1);
                    nta_predecode_done_with(pd, i + 1);
                }
            }
            /* Once per round, give the helper time to release what the
             * caller is done with: it must do so before the batch ends. */
            if (n == NTA_PREDECODE_MAX) {
                size_t before = atomic_load(&helper_releases);
                for (int w = 0; w < 5000 && atomic_load(&helper_releases) == before; w++)
                    usleep(1000);
                assert_true(atomic_load(&helper_releases) > before);
            }
            atomic_store(&done_upto, n);
            nta_predecode_end(pd);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(atomic_load(&release_count[i]), 1);
        }
    }
    nta_predecode_destroy(pd);
    assert_int_equal(atomic_load(&release_early), 0);
    for (size_t i = 0; i < NTA_PREDECODE_MAX; i++)
        assert_true(atomic_load(&release_count[i]) <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_payloads),
        cmocka_unit_test(test_batches_match_plain_decoding),
        cmocka_unit_test(test_batch_never_read),
        cmocka_unit_test(test_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
