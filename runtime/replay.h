/* Replay: a traffic file (see reader.h) fed straight into a pipeline script,
 * or published to Kafka, at its original timing, N times faster, or flat out.
 *
 * Timing: record i is due at wall time w0 + (ts_i - ts_0) / speed, ts_0 being
 * the first record's time. The pipeline's idle clock runs on replay time
 * (event time as the replay paces it), so a gap in the file closes windows
 * exactly as the same gap would live, at any speed; flat out, windows close
 * on event time alone.
 *
 * Order: flow logs are written when connections end, and the CIC samples are
 * shuffled, so by default a flow log is read whole and sorted by time (stably)
 * before it is replayed: a file is finite and at hand, sorting it costs a
 * record and its position (72 bytes) per line, and the result is exactly what
 * a live feed in time order would give, with no lateness to tune and nothing
 * dropped as late. Captures are already in time order (the flow builder
 * keeps flow records in order too), so they are streamed with bounded memory.
 * --no-sort streams any file and leaves disorder to the pipeline's lateness. */
#ifndef NTA_REPLAY_H
#define NTA_REPLAY_H

#include "conf.h"
#include "reader.h"
#include "run.h"
#include "script.h"

typedef struct nta_replay_opts {
    const char *path;
    nta_reader_opts reader;
    double speed; /* > 0: original gaps divided by speed; 0: as fast as possible */
    int sort;     /* -1: by format (flow logs sorted, captures streamed), 0 no, 1 yes */
    const char *publish_topic; /* non-NULL: publish to this topic (needs brokers) */
} nta_replay_opts;

void nta_replay_opts_init(nta_replay_opts *ro);

/* Feeds the file into the pipeline script s (conf from its declarations);
 * results are printed as the in-process pipeline prints them. Returns the
 * exit code: 0, or 1 when the file could not be opened or was bad (what was
 * read before the bad part is processed and flushed first). */
int nta_run_replay(nta_script *s, nta_pipeline_conf *conf, const nta_run_opts *o,
                   const nta_replay_opts *ro);

/* Publishes the file's records to ro->publish_topic on o->kafka.brokers, in
 * nta's JSON record format, keyed by source address, with the record time as
 * the message timestamp. Returns the exit code as above. */
int nta_run_replay_publish(const nta_run_opts *o, const nta_replay_opts *ro);

#endif
