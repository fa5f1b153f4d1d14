/* Drives a generator script at a target rate and encodes what it emits.
 *
 * Event time of record i is start + i * 1000/rate ms, so a run is the same
 * records whatever the machine's speed; pacing only decides when each batch
 * is asked for. With fast set there is no pacing (benchmarks, backfills). */
#ifndef NTA_GENERATOR_H
#define NTA_GENERATOR_H

#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "script.h"

typedef struct nta_gen nta_gen;

/* script and conf must outlive the generator. now_us is the wall clock in
 * microseconds; it also fixes the start event time when conf has none. */
nta_gen *nta_gen_create(nta_script *script, const nta_gen_conf *conf, int fast, int64_t now_us);
void nta_gen_destroy(nta_gen *g);

/* Asks the script for the records due by now_us (at most max_batch), each
 * passed to fn. Returns the number emitted (0 when none is due yet), or -1
 * with the script's error in err. */
long nta_gen_step(nta_gen *g, int64_t now_us, long max_batch, nta_gen_emit_fn fn, void *ctx,
                  char *err, size_t errlen);

/* True once conf->count records were emitted. */
int nta_gen_finished(const nta_gen *g);

/* Records emitted so far, and per second of wall time since the start. */
int64_t nta_gen_emitted(const nta_gen *g);
double nta_gen_achieved_rate(const nta_gen *g, int64_t now_us);

/* Microseconds until the next record is due (0 if one is due now). */
int64_t nta_gen_wait_us(const nta_gen *g, int64_t now_us);

/* Appends r in the wire format f: json (the flat form the json decoder
 * reads), csv (the classic src_ip,dst_ip,bytes_sent; the event time travels
 * as the Kafka message timestamp) or goflow2 (v2 snake_case JSON). */
void nta_gen_encode(nta_buf *b, const nta_record *r, nta_gen_format f);

#endif
