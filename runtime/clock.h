/* Clocks: wall time for event-time arithmetic and what people read, the
 * monotonic clock for durations and deadlines. */
#ifndef NTA_CLOCK_H
#define NTA_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t nta_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t nta_wall_ms(void) { return nta_wall_us() / 1000; }

static inline int64_t nta_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void nta_sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

#endif
