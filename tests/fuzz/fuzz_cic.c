/* libFuzzer target: the CICFlowMeter CSV reader. */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_CIC;
    fuzz_read_all(data, size, &o);
    return 0;
}
