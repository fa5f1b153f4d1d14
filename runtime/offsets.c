#include "offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    int64_t done_ms;
    int64_t min_offset;
} bucket;

typedef struct part {
    int64_t next_offset; /* one past the last tracked offset; -1 = never seen */
    bucket *b;           /* sorted by done_ms */
    size_t n, cap;
} part;

struct nta_offsets {
    part *parts;
    int32_t nparts;
};

nta_offsets *nta_offsets_create(void) { return calloc(1, sizeof(nta_offsets)); }

void nta_offsets_destroy(nta_offsets *o)
{
    if (o == NULL)
        return;
    for (int32_t i = 0; i < o->nparts; i++)
        free(o->parts[i].b);
    free(o->parts);
    free(o);
}

static part *get_part(nta_offsets *o, int32_t p)
{
    if (p >= o->nparts) {
        part *np = realloc(o->parts, sizeof(part) * (size_t)(p + 1));
        if (np == NULL)
            abort();
        for (int32_t i = o->nparts; i <= p; i++)
            np[i] = (part){.next_offset = -1};
        o->parts = np;
        o->nparts = p + 1;
    }
    return &o->parts[p];
}

void nta_offsets_track(nta_offsets *o, int32_t partition, int64_t offset, int64_t done_ms)
{
    part *pt = get_part(o, partition);
    pt->next_offset = offset + 1;
    if (done_ms == INT64_MIN)
        return;
    /* Records mostly arrive in time order: the common case is the last bucket. */
    size_t lo = 0, hi = pt->n;
    if (pt->n && pt->b[pt->n - 1].done_ms <= done_ms)
        lo = pt->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pt->b[mid].done_ms < done_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < pt->n && pt->b[lo].done_ms == done_ms)
        return; /* an earlier, smaller offset already waits for this time */
    if (pt->n == pt->cap) {
        size_t cap = pt->cap ? pt->cap * 2 : 16;
        bucket *nb = realloc(pt->b, cap * sizeof(bucket));
        if (nb == NULL)
            abort();
        pt->b = nb;
        pt->cap = cap;
    }
    memmove(&pt->b[lo + 1], &pt->b[lo], (pt->n - lo) * sizeof(bucket));
    pt->b[lo] = (bucket){done_ms, offset};
    pt->n++;
}

void nta_offsets_release(nta_offsets *o, int64_t wm)
{
    for (int32_t i = 0; i < o->nparts; i++) {
        part *pt = &o->parts[i];
        size_t k = 0;
        while (k < pt->n && pt->b[k].done_ms <= wm)
            k++;
        if (k) {
            memmove(pt->b, pt->b + k, (pt->n - k) * sizeof(bucket));
            pt->n -= k;
        }
    }
}

int64_t nta_offsets_commit_point(const nta_offsets *o, int32_t partition)
{
    if (partition < 0 || partition >= o->nparts || o->parts[partition].next_offset < 0)
        return -1;
    const part *pt = &o->parts[partition];
    int64_t c = pt->next_offset;
    for (size_t k = 0; k < pt->n; k++)
        if (pt->b[k].min_offset < c)
            c = pt->b[k].min_offset;
    return c;
}

void nta_offsets_forget(nta_offsets *o, int32_t partition)
{
    if (partition < 0 || partition >= o->nparts)
        return;
    free(o->parts[partition].b);
    o->parts[partition] = (part){.next_offset = -1};
}

int32_t nta_offsets_partitions(const nta_offsets *o) { return o->nparts; }
