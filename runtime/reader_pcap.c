/* Packet captures: pcap and pcapng through libpcap, into one record per
 * packet or into flow records.
 *
 * Link layers: Ethernet (with any number of 802.1Q / 802.1ad / QinQ tags),
 * raw IP, Linux cooked (SLL and SLL2), BSD loopback. Network: IPv4, and IPv6
 * with its extension headers skipped. Transport: TCP and UDP (and SCTP)
 * ports, TCP flags; ICMP and ICMPv6 put the type in src_port and the code in
 * dst_port, as Zeek's conn.log does, so captures and Zeek logs agree.
 *
 * Fragments: a first fragment's ports are remembered by (src, dst, proto, IP
 * id) in a small direct-mapped cache, and later fragments of the same
 * datagram take them, so in flow mode they join the first fragment's flow.
 * A fragment whose first fragment was not seen (or was pushed out of the
 * cache) gets ports 0 and is counted in fragments_unmatched.
 *
 * Flow mode keeps memory bounded: flows live in a hash table capped at
 * max_flows and are exported as capture time passes their idle timeout (or
 * on their first packet past the active timeout, or when the table is full:
 * least recently seen first). Exported flows wait in a min-heap keyed by
 * their end time and leave it once capture time is idle_timeout past that
 * end: no flow still in the table can end earlier, so records come out in
 * time order, which lets the pipeline run with no lateness. */
#include "reader_impl.h"

#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Linux keeps fragments for 30 s (net.ipv4.ipfrag_time): later ones are
 * not of the same datagram. */
#define FRAG_TTL_US 30000000
#define FRAG_SLOTS 4096
/* Ethernet in Ethernet in ...: no real capture nests deeper than this. */
#define MAX_VLAN_TAGS 8
#define MAX_IPV6_EXT 16
/* 9999-12-31T23:59:59Z: later packet times are corrupt. */
#define MAX_TS_SEC 253402300799LL

typedef struct pkt {
    nta_addr src, dst;
    uint64_t ip_bytes;
    uint32_t frag_id;
    uint16_t sport, dport;
    uint8_t proto, flags;
    uint8_t first_frag; /* offset 0 and more fragments follow: remember the ports */
    uint8_t later_frag; /* offset > 0: no transport header */
} pkt;

typedef enum pkt_status { PKT_OK, PKT_SKIP, PKT_TRUNC } pkt_status;

typedef struct frag_ent {
    nta_addr src, dst;
    int64_t ts_us;
    uint32_t id;
    uint16_t sport, dport;
    uint8_t proto, used;
} frag_ent;

typedef struct flow_key {
    nta_addr src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t pad[3]; /* zeroed: the key is hashed and compared as bytes */
} flow_key;

typedef struct flow {
    flow_key k;
    int64_t first_us, last_us;
    uint64_t bytes, packets;
    uint8_t flags;
    int32_t hnext;            /* hash chain, or free list */
    int32_t lru_prev, lru_next; /* least recently seen first */
} flow;

typedef struct heap_ent {
    int64_t ts_us;
    uint64_t seq; /* export order breaks ties, so equal times keep it */
    nta_record rec;
} heap_ent;

typedef struct pcap_rd {
    pcap_t *pc;
    int dlt;
    frag_ent *frags;
    /* flow mode */
    flow *flows;
    int32_t cap, count, free_head, lru_head, lru_tail;
    int32_t *buckets;
    uint32_t nbuckets; /* power of two */
    heap_ent *heap;
    size_t nheap, capheap;
    uint64_t seq;
    int64_t now_us; /* highest packet time seen */
    int eof;
    int pending_error; /* an error to return once the flows read before it are out */
} pcap_rd;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Ports (or ICMP type/code) and TCP flags from a transport header of n
 * captured bytes. */
static pkt_status parse_transport(pkt *k, const uint8_t *p, size_t n)
{
    switch (k->proto) {
    case 6:
    case 17:
    case 132:
        /* TCP's flags are in byte 13; UDP and SCTP need the ports only. */
        if (n < (k->proto == 6 ? 14u : 4u))
            return PKT_TRUNC;
        if (k->proto == 6)
            k->flags = p[13];
        k->sport = rd16(p);
        k->dport = rd16(p + 2);
        return PKT_OK;
    case 1:
    case 58:
        if (n < 2)
            return PKT_TRUNC;
        k->sport = p[0];
        k->dport = p[1];
        return PKT_OK;
    default:
        return PKT_OK;
    }
}

static pkt_status parse_ipv4(pkt *k, const uint8_t *p, size_t n)
{
    if (n < 20)
        return PKT_TRUNC;
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    size_t total = rd16(p + 2);
    if (ihl < 20 || ihl > n || total < ihl)
        return PKT_TRUNC;
    k->ip_bytes = total;
    k->proto = p[9];
    k->frag_id = rd16(p + 4);
    nta_addr_from_v4(&k->src, rd32(p + 12));
    nta_addr_from_v4(&k->dst, rd32(p + 16));
    uint16_t fo = rd16(p + 6);
    if ((fo & 0x1fff) != 0) {
        k->later_frag = 1;
        return PKT_OK;
    }
    k->first_frag = (fo & 0x2000) != 0;
    /* Bytes past the total length are link-layer padding, not transport. */
    size_t end = total < n ? total : n;
    return parse_transport(k, p + ihl, end - ihl);
}

static pkt_status parse_ipv6(pkt *k, const uint8_t *p, size_t n)
{
    if (n < 40)
        return PKT_TRUNC;
    size_t plen = rd16(p + 4);
    /* A jumbogram says 0 here; its length is in a hop-by-hop option we do
     * not read, so count what was captured. */
    k->ip_bytes = plen ? 40 + plen : n;
    memcpy(k->src.b, p + 8, 16);
    memcpy(k->dst.b, p + 24, 16);
    uint8_t nh = p[6];
    size_t off = 40;
    size_t end = plen && 40 + plen < n ? 40 + plen : n;
    for (int i = 0; i < MAX_IPV6_EXT; i++) {
        const uint8_t *h = p + off;
        size_t hlen;
        switch (nh) {
        case 0:   /* hop-by-hop options */
        case 43:  /* routing */
        case 60:  /* destination options */
        case 135: /* mobility */
            if (end - off < 8)
                return PKT_TRUNC;
            hlen = ((size_t)h[1] + 1) * 8;
            break;
        case 51: /* authentication header */
            if (end - off < 8)
                return PKT_TRUNC;
            hlen = ((size_t)h[1] + 2) * 4;
            break;
        case 44: { /* fragment */
            if (end - off < 8)
                return PKT_TRUNC;
            uint16_t fo = rd16(h + 2);
            k->frag_id = rd32(h + 4);
            if ((fo & 0xfff8) != 0) {
                k->proto = h[0];
                k->later_frag = 1;
                return PKT_OK;
            }
            k->first_frag = (fo & 1) != 0;
            hlen = 8;
            break;
        }
        default:
            k->proto = nh;
            return parse_transport(k, p + off, end - off);
        }
        if (end - off < hlen)
            return PKT_TRUNC;
        nh = h[0];
        off += hlen;
    }
    return PKT_SKIP; /* an extension header chain no real packet has */
}

static pkt_status parse_ip(pkt *k, const uint8_t *p, size_t n)
{
    if (n < 1)
        return PKT_TRUNC;
    switch (p[0] >> 4) {
    case 4: return parse_ipv4(k, p, n);
    case 6: return parse_ipv6(k, p, n);
    default: return PKT_SKIP;
    }
}

/* From an ethertype at p[-2..-1] on: VLAN tags, then IPv4 or IPv6. */
static pkt_status parse_ethertype(pkt *k, uint16_t type, const uint8_t *p, size_t n)
{
    for (int i = 0; i <= MAX_VLAN_TAGS; i++) {
        switch (type) {
        case 0x0800:
        case 0x86dd:
            return parse_ip(k, p, n);
        case 0x8100: /* 802.1Q */
        case 0x88a8: /* 802.1ad (QinQ outer) */
        case 0x9100: /* pre-standard QinQ */
            if (n < 4)
                return PKT_TRUNC;
            type = rd16(p + 2);
            p += 4;
            n -= 4;
            break;
        default:
            return PKT_SKIP;
        }
    }
    return PKT_SKIP;
}

static pkt_status parse_packet(int dlt, pkt *k, const uint8_t *p, size_t n)
{
    memset(k, 0, sizeof *k);
    switch (dlt) {
    case DLT_EN10MB:
        if (n < 14)
            return PKT_TRUNC;
        return parse_ethertype(k, rd16(p + 12), p + 14, n - 14);
    case DLT_LINUX_SLL:
        if (n < 16)
            return PKT_TRUNC;
        return parse_ethertype(k, rd16(p + 14), p + 16, n - 16);
    case DLT_LINUX_SLL2:
        if (n < 20)
            return PKT_TRUNC;
        return parse_ethertype(k, rd16(p), p + 20, n - 20);
    case DLT_NULL:
    case DLT_LOOP:
        /* The 4-byte address family is in the writer's byte order and its
         * IPv6 value differs by OS; the IP version nibble is unambiguous. */
        if (n < 4)
            return PKT_TRUNC;
        return parse_ip(k, p + 4, n - 4);
    default: /* DLT_RAW, DLT_IPV4, DLT_IPV6 */
        return parse_ip(k, p, n);
    }
}

static int dlt_supported(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return 1;
    default:
        return 0;
    }
}

/* ---- fragments ---------------------------------------------------------- */

static frag_ent *frag_slot(pcap_rd *pr, const pkt *k)
{
    struct {
        nta_addr src, dst;
        uint32_t id;
        uint8_t proto;
    } key;
    memset(&key, 0, sizeof key);
    key.src = k->src;
    key.dst = k->dst;
    key.id = k->frag_id;
    key.proto = k->proto;
    return &pr->frags[XXH3_64bits(&key, sizeof key) & (FRAG_SLOTS - 1)];
}

static void frag_track(nta_reader *r, pcap_rd *pr, pkt *k, int64_t ts_us)
{
    if (k->first_frag) {
        frag_ent *e = frag_slot(pr, k);
        *e = (frag_ent){k->src, k->dst, ts_us, k->frag_id, k->sport, k->dport, k->proto, 1};
    } else if (k->later_frag) {
        r->st.fragments++;
        frag_ent *e = frag_slot(pr, k);
        if (e->used && e->id == k->frag_id && e->proto == k->proto &&
            memcmp(&e->src, &k->src, sizeof e->src) == 0 &&
            memcmp(&e->dst, &k->dst, sizeof e->dst) == 0 && ts_us - e->ts_us <= FRAG_TTL_US) {
            k->sport = e->sport;
            k->dport = e->dport;
        } else {
            r->st.fragments_unmatched++;
        }
    }
}

/* ---- records ------------------------------------------------------------ */

static int64_t us_to_ms(int64_t us)
{
    int64_t ms = us / 1000;
    return (us % 1000 < 0) ? ms - 1 : ms; /* floor, also before 1970 */
}

static void fill_record(nta_record *out, const flow_key *k, int64_t ts_us, uint64_t bytes,
                        uint64_t packets, uint8_t flags)
{
    memset(out, 0, sizeof *out);
    out->ts_ms = us_to_ms(ts_us);
    out->src = k->src;
    out->dst = k->dst;
    out->src_port = k->sport;
    out->dst_port = k->dport;
    out->proto = k->proto;
    out->bytes = bytes;
    out->packets = packets;
    out->tcp_flags = flags;
    out->present = NTA_HAS(NTA_F_SRC_IP) | NTA_HAS(NTA_F_DST_IP) | NTA_HAS(NTA_F_SRC_PORT) |
                   NTA_HAS(NTA_F_DST_PORT) | NTA_HAS(NTA_F_PROTO) | NTA_HAS(NTA_F_BYTES) |
                   NTA_HAS(NTA_F_PACKETS) | NTA_HAS(NTA_F_TCP_FLAGS);
}

static void key_of(flow_key *fk, const pkt *k)
{
    memset(fk, 0, sizeof *fk);
    fk->src = k->src;
    fk->dst = k->dst;
    fk->sport = k->sport;
    fk->dport = k->dport;
    fk->proto = k->proto;
}

/* ---- the export heap ------------------------------------------------------ */

static int heap_less(const heap_ent *a, const heap_ent *b)
{
    return a->ts_us < b->ts_us || (a->ts_us == b->ts_us && a->seq < b->seq);
}

static void heap_push(pcap_rd *pr, const flow *f)
{
    if (pr->nheap == pr->capheap) {
        size_t cap = pr->capheap ? pr->capheap * 2 : 1024;
        heap_ent *nh = realloc(pr->heap, cap * sizeof *nh);
        if (nh == NULL)
            abort(); /* as nta_buf: no partial state to recover */
        pr->heap = nh;
        pr->capheap = cap;
    }
    heap_ent e = {.ts_us = f->last_us, .seq = pr->seq++};
    fill_record(&e.rec, &f->k, f->last_us, f->bytes, f->packets, f->flags);
    size_t i = pr->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_less(&e, &pr->heap[up]))
            break;
        pr->heap[i] = pr->heap[up];
        i = up;
    }
    pr->heap[i] = e;
}

static void heap_pop(pcap_rd *pr, nta_record *out)
{
    *out = pr->heap[0].rec;
    heap_ent last = pr->heap[--pr->nheap];
    size_t i = 0, n = pr->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && heap_less(&pr->heap[c + 1], &pr->heap[c]))
            c++;
        if (!heap_less(&pr->heap[c], &last))
            break;
        pr->heap[i] = pr->heap[c];
        i = c;
    }
    if (n > 0)
        pr->heap[i] = last;
}

/* ---- the flow table ------------------------------------------------------- */

static uint32_t key_hash(const flow_key *k) { return (uint32_t)XXH3_64bits(k, sizeof *k); }

static void lru_unlink(pcap_rd *pr, int32_t i)
{
    flow *f = &pr->flows[i];
    if (f->lru_prev >= 0)
        pr->flows[f->lru_prev].lru_next = f->lru_next;
    else
        pr->lru_head = f->lru_next;
    if (f->lru_next >= 0)
        pr->flows[f->lru_next].lru_prev = f->lru_prev;
    else
        pr->lru_tail = f->lru_prev;
}

static void lru_append(pcap_rd *pr, int32_t i)
{
    flow *f = &pr->flows[i];
    f->lru_prev = pr->lru_tail;
    f->lru_next = -1;
    if (pr->lru_tail >= 0)
        pr->flows[pr->lru_tail].lru_next = i;
    else
        pr->lru_head = i;
    pr->lru_tail = i;
}

/* Exports flow i and returns its slot to the free list. */
static void flow_export(pcap_rd *pr, int32_t i)
{
    flow *f = &pr->flows[i];
    heap_push(pr, f);
    int32_t *pp = &pr->buckets[key_hash(&f->k) & (pr->nbuckets - 1)];
    while (*pp != i)
        pp = &pr->flows[*pp].hnext;
    *pp = f->hnext;
    lru_unlink(pr, i);
    f->hnext = pr->free_head;
    pr->free_head = i;
    pr->count--;
}

static void rehash(pcap_rd *pr, uint32_t nbuckets)
{
    int32_t *nb = malloc(nbuckets * sizeof *nb);
    if (nb == NULL)
        abort();
    memset(nb, 0xff, nbuckets * sizeof *nb); /* -1: empty */
    for (int32_t i = pr->lru_head; i >= 0; i = pr->flows[i].lru_next) {
        uint32_t b = key_hash(&pr->flows[i].k) & (nbuckets - 1);
        pr->flows[i].hnext = nb[b];
        nb[b] = i;
    }
    free(pr->buckets);
    pr->buckets = nb;
    pr->nbuckets = nbuckets;
}

/* A free slot: the free list, else a bigger table while under max_flows,
 * else the least recently seen flow, exported early. */
static int32_t flow_alloc(nta_reader *r, pcap_rd *pr)
{
    if (pr->free_head < 0) {
        if ((size_t)pr->cap < r->opts.max_flows) {
            size_t cap = pr->cap ? (size_t)pr->cap * 2 : 1024;
            if (cap > r->opts.max_flows)
                cap = r->opts.max_flows;
            flow *nf = realloc(pr->flows, cap * sizeof *nf);
            if (nf == NULL)
                abort();
            pr->flows = nf;
            for (size_t i = cap; i-- > (size_t)pr->cap;) {
                nf[i].hnext = pr->free_head;
                pr->free_head = (int32_t)i;
            }
            pr->cap = (int32_t)cap;
            uint32_t nb = pr->nbuckets;
            while (nb < cap)
                nb *= 2;
            if (nb != pr->nbuckets)
                rehash(pr, nb);
        } else {
            r->st.flows_evicted++;
            flow_export(pr, pr->lru_head);
        }
    }
    int32_t i = pr->free_head;
    pr->free_head = pr->flows[i].hnext;
    return i;
}

static void flow_add(nta_reader *r, pcap_rd *pr, const pkt *k, int64_t ts_us)
{
    int64_t active = r->opts.active_timeout_ms * 1000, idle = r->opts.idle_timeout_ms * 1000;
    while (pr->lru_head >= 0 && pr->flows[pr->lru_head].last_us + idle <= pr->now_us)
        flow_export(pr, pr->lru_head);

    flow_key fk;
    key_of(&fk, k);
    uint32_t h = key_hash(&fk);
    int32_t i = pr->buckets[h & (pr->nbuckets - 1)];
    while (i >= 0 && memcmp(&pr->flows[i].k, &fk, sizeof fk) != 0)
        i = pr->flows[i].hnext;
    if (i >= 0 && ts_us - pr->flows[i].first_us >= active) {
        /* Active timeout: the long flow so far is exported, a new one starts. */
        flow_export(pr, i);
        i = -1;
    }
    if (i < 0) {
        i = flow_alloc(r, pr);
        flow *f = &pr->flows[i];
        f->k = fk;
        f->first_us = f->last_us = ts_us;
        f->bytes = f->packets = 0;
        f->flags = 0;
        uint32_t b = h & (pr->nbuckets - 1);
        f->hnext = pr->buckets[b];
        pr->buckets[b] = i;
        pr->count++;
    } else {
        lru_unlink(pr, i);
    }
    lru_append(pr, i);
    flow *f = &pr->flows[i];
    if (ts_us > f->last_us)
        f->last_us = ts_us;
    if (ts_us < f->first_us)
        f->first_us = ts_us;
    f->bytes += k->ip_bytes;
    f->packets++;
    f->flags |= k->flags;
}

/* ---- reading ---------------------------------------------------------------- */

/* The next IP packet: 1, 0 at the end, -1 on an error. */
static int read_packet(nta_reader *r, pcap_rd *pr, pkt *k, int64_t *ts_us)
{
    for (;;) {
        struct pcap_pkthdr *hdr;
        const u_char *data;
        int rc = pcap_next_ex(pr->pc, &hdr, &data);
        if (rc == PCAP_ERROR_BREAK)
            return 0;
        if (rc != 1) {
            FILE *f = pcap_file(pr->pc);
            long off = f ? ftell(f) : -1;
            return nta_reader_fail(r, "packet %llu (byte offset %ld): %s",
                                   (unsigned long long)r->st.units + 1, off,
                                   pcap_geterr(pr->pc));
        }
        r->st.units++;
        pkt_status st = parse_packet(pr->dlt, k, data, hdr->caplen);
        if (st == PKT_SKIP) {
            r->st.skipped++;
            continue;
        }
        if (st == PKT_TRUNC) {
            r->st.truncated++;
            continue;
        }
        /* pcapng stores 64-bit times: one past year 9999 is a corrupt block,
         * and would overflow the microsecond clock. */
        if (hdr->ts.tv_sec < 0 || hdr->ts.tv_sec > MAX_TS_SEC)
            return nta_reader_fail(r, "packet %llu: time stamp %lld s is out of range",
                                   (unsigned long long)r->st.units,
                                   (long long)hdr->ts.tv_sec);
        *ts_us = (int64_t)hdr->ts.tv_sec * 1000000 + hdr->ts.tv_usec;
        frag_track(r, pr, k, *ts_us);
        return 1;
    }
}

static int next_packet(nta_reader *r, nta_record *out)
{
    pcap_rd *pr = r->impl;
    pkt k;
    int64_t ts;
    int rc = read_packet(r, pr, &k, &ts);
    if (rc == 1) {
        flow_key fk;
        key_of(&fk, &k);
        fill_record(out, &fk, ts, k.ip_bytes, 1, k.flags);
    }
    return rc;
}

static int next_flow(nta_reader *r, nta_record *out)
{
    pcap_rd *pr = r->impl;
    int64_t idle = r->opts.idle_timeout_ms * 1000;
    for (;;) {
        if (pr->nheap > 0 && (pr->eof || pr->heap[0].ts_us <= pr->now_us - idle)) {
            heap_pop(pr, out);
            return 1;
        }
        if (pr->eof)
            return pr->pending_error ? -1 : 0;
        pkt k;
        int64_t ts;
        int rc = read_packet(r, pr, &k, &ts);
        if (rc == 1) {
            if (ts > pr->now_us)
                pr->now_us = ts;
            flow_add(r, pr, &k, ts);
            continue;
        }
        /* End or error: every flow still open is a record read so far. */
        pr->pending_error = rc < 0;
        pr->eof = 1;
        while (pr->lru_head >= 0)
            flow_export(pr, pr->lru_head);
    }
}

static void pcap_close_rd(nta_reader *r)
{
    pcap_rd *pr = r->impl;
    if (pr == NULL)
        return;
    if (pr->pc)
        pcap_close(pr->pc);
    free(pr->frags);
    free(pr->flows);
    free(pr->buckets);
    free(pr->heap);
    free(pr);
}

int nta_reader_pcap_init(nta_reader *r, FILE *f)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_rd *pr = calloc(1, sizeof *pr);
    if (pr == NULL) {
        fclose(f);
        return nta_reader_fail(r, "out of memory");
    }
    r->impl = pr;
    r->close = pcap_close_rd;
    /* Microseconds whatever the file holds: records carry milliseconds. */
    pr->pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (pr->pc == NULL) {
        fclose(f); /* libpcap leaves the stream to us when it fails */
        return nta_reader_fail(r, "not a readable pcap or pcapng file: %s", errbuf);
    }
    pr->dlt = pcap_datalink(pr->pc);
    if (!dlt_supported(pr->dlt)) {
        const char *name = pcap_datalink_val_to_name(pr->dlt);
        return nta_reader_fail(r, "link type %d (%s) is not supported: Ethernet, raw IP, Linux "
                                  "cooked and loopback captures are",
                               pr->dlt, name ? name : "unknown");
    }
    pr->frags = calloc(FRAG_SLOTS, sizeof *pr->frags);
    if (pr->frags == NULL)
        return nta_reader_fail(r, "out of memory");
    pr->free_head = pr->lru_head = pr->lru_tail = -1;
    pr->now_us = INT64_MIN / 2; /* no packet yet; halved so now - idle cannot overflow */
    if (r->opts.flows) {
        rehash(pr, 1024);
        r->next = next_flow;
    } else {
        r->next = next_packet;
    }
    return 0;
}
