/* bench/decode_bench.c: what nta_decode costs per JSON record when jsmn
 * tokenises every payload (json_reference = 1) and with the single-pass
 * scanner, on the same records in the same process.
 *
 * Usage: decode_bench FILE FORMAT ROUNDS
 *   FILE    records, one per line (scripts/gen_traffic.lua output)
 *   FORMAT  auto | json | goflow2: the decoder's format, as a script's input{}
 *   ROUNDS  passes over FILE per reading, alternating the two readings
 *
 * Prints one line per reading: the median ns/record over the rounds, then
 * the ratio jsmn / scanner. Before timing, it decodes every record both ways
 * and exits 1 if any status or record differs, or if any record is bad. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "decode.h"

typedef struct line {
    const char *s;
    size_t n;
} line;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

/* CPU time of this thread: the machine is shared, and wall time would count
 * the time other processes hold the core. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU ns per record of one pass; sink keeps the decoding from being
 * optimised away. */
static double pass(nta_decoder *d, const line *lines, size_t nlines, uint64_t *sink)
{
    int64_t t0 = cpu_ns();
    for (size_t i = 0; i < nlines; i++) {
        nta_record r;
        nta_decode_status st = nta_decode(d, lines[i].s, lines[i].n, &r);
        *sink += (uint64_t)st + r.bytes + r.src.b[15];
    }
    return (double)(cpu_ns() - t0) / (double)nlines;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: decode_bench FILE auto|json|goflow2 ROUNDS\n");
        return 2;
    }
    nta_format fmt = nta_format_by_name(argv[2]);
    int rounds = atoi(argv[3]);
    if ((int)fmt < 0 || fmt == NTA_FMT_CSV || rounds < 1) {
        fprintf(stderr, "decode_bench: bad format or rounds\n");
        return 2;
    }
    size_t len;
    char *buf = read_file(argv[1], &len);
    if (buf == NULL) {
        perror(argv[1]);
        return 2;
    }
    size_t nlines = 0;
    for (size_t i = 0; i < len; i++)
        nlines += buf[i] == '\n';
    line *lines = malloc((nlines + 1) * sizeof *lines);
    nlines = 0;
    for (size_t start = 0, i = 0; i <= len; i++) {
        if (i < len && buf[i] != '\n')
            continue;
        if (i > start)
            lines[nlines++] = (line){buf + start, i - start};
        start = i + 1;
    }

    nta_decoder ref, fast;
    nta_decoder_init(&ref, fmt);
    nta_decoder_init(&fast, fmt);
    ref.json_reference = 1;
    for (size_t i = 0; i < nlines; i++) {
        nta_record a, b;
        nta_decode_status sa = nta_decode(&ref, lines[i].s, lines[i].n, &a);
        nta_decode_status sb = nta_decode(&fast, lines[i].s, lines[i].n, &b);
        if (sa != NTA_DEC_OK || sb != sa || memcmp(&a, &b, sizeof a) != 0) {
            fprintf(stderr, "decode_bench: line %zu: jsmn %s, scanner %s%s\n", i + 1,
                    nta_decode_status_name(sa), nta_decode_status_name(sb),
                    sb == sa ? ", records differ" : "");
            return 1;
        }
    }

    uint64_t fallbacks = fast.json_fallbacks;
    double *t[2];
    uint64_t sink = 0;
    for (int m = 0; m < 2; m++)
        t[m] = malloc((size_t)rounds * sizeof(double));
    for (int i = 0; i < rounds; i++) {
        t[0][i] = pass(&ref, lines, nlines, &sink);
        t[1][i] = pass(&fast, lines, nlines, &sink);
    }
    static const char *const names[2] = {"jsmn", "scanner"};
    double med[2];
    for (int m = 0; m < 2; m++) {
        qsort(t[m], (size_t)rounds, sizeof(double), cmp_double);
        med[m] = t[m][rounds / 2];
        printf("%-8s %s %zu records: %.1f ns/record (median of %d; min %.1f, max %.1f)\n",
               names[m], argv[2], nlines, med[m], rounds, t[m][0], t[m][rounds - 1]);
    }
    printf("ratio jsmn/scanner %.2f; records the scanner left to jsmn: %llu (sink %llu)\n",
           med[0] / med[1], (unsigned long long)fallbacks,
           (unsigned long long)(sink & 1));
    return 0;
}
