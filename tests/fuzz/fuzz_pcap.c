/* libFuzzer target: the capture reader (libpcap + nta's packet parsing), in
 * packet mode and in flow mode with a tiny table and short timeouts, so
 * eviction and both expiries run on every input. */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_PCAP;
    fuzz_read_all(data, size, &o);
    o.flows = 1;
    o.max_flows = 4;
    o.active_timeout_ms = 2;
    o.idle_timeout_ms = 1;
    fuzz_read_all(data, size, &o);
    return 0;
}
