/* libFuzzer target: the JSON-lines reader, as goflow2 and as nta JSON. */
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nta_reader_opts o;
    nta_reader_opts_init(&o);
    o.format = NTA_READ_GOFLOW2;
    fuzz_read_all(data, size, &o);
    o.format = NTA_READ_JSON;
    fuzz_read_all(data, size, &o);
    return 0;
}
