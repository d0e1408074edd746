/*  bench_rawzmq.h - the raw libzmq PUB/SUB baseline of the benchmarks that publish (`weft
    bench pubsub`, `weft bench archive`): a SUB bound on TCP loopback with a PUB connected to
    it, the three frames of a weft data message (topic, an envelope-sized blob, the payload)
    sent without blocking, a warm-up until the subscription has reached the PUB, and a thread
    that receives and counts the messages. What is sent, timed and reported is each
    benchmark's own.

    Use: bench_rawzmq_open, bench_rawzmq_warm_up, bench_rawzmq_receive, then send the
    messages with bench_rawzmq_send, bench_rawzmq_wait for the receiver, read z.rx, and
    bench_rawzmq_close (also after a failed step).
*/
#ifndef WEFT_BENCH_RAWZMQ_H_INCLUDED
#define WEFT_BENCH_RAWZMQ_H_INCLUDED

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define BENCH_RAWZMQ_DRAIN_MS 50 /* after the warm-up, messages in flight are drained this long */

/*  The frames of one message. */
typedef struct {
    const char *topic;         /* NUL-terminated; also the SUB's subscription */
    size_t topic_size;         /* strlen(topic) */
    const void *envelope;
    size_t envelope_size;
    const void *payload;
    size_t payload_size;
} bench_frames_t;

/*  The receiving thread's state. It writes these for every message, so they sit on cache
    lines of their own, away from the sending thread's data. */
typedef struct {
    _Alignas(64) void *sock;
    uint64_t expect;           /* it stops after this many messages ... */
    uint64_t received;         /* ... or after idle_ms without one */
    int64_t last_ns;           /* bench_now_ns() of the last message */
    atomic_bool running;
    char pad[64];
} bench_rawsub_t;

typedef struct {
    zsock_t *pub, *sub;
    void *pub_sock, *sub_sock; /* the libzmq sockets of pub and sub */
    pthread_t thread;
    bench_rawsub_t rx;
} bench_rawzmq_t;

/*  Creates the pair: the SUB subscribed to topic and bound to tcp://127.0.0.1:*, the PUB
    (immediate) connected to it, both with linger 0 and the given HWM. Returns 0; -1 when the
    sockets cannot be created; -2 when they cannot bind or connect (zmq_errno() says why). */
int bench_rawzmq_open(bench_rawzmq_t *z, const char *topic, int hwm);

/*  Sends messages until the SUB receives one (the connection is up and the subscription has
    reached the PUB) or timeout_ms passes, then drains what is still in flight. Returns 0, or
    -1 when no message arrived (or the process was interrupted). */
int bench_rawzmq_warm_up(bench_rawzmq_t *z, const bench_frames_t *f, int timeout_ms);

/*  Starts the receiving thread for expect messages; it stops early after idle_ms without one.
    Returns once it runs: 0, or -1 when it could not be started. */
int bench_rawzmq_receive(bench_rawzmq_t *z, uint64_t expect, int idle_ms);

/*  Waits for the receiving thread to end; z->rx then holds its counts. */
void bench_rawzmq_wait(bench_rawzmq_t *z);

/*  Closes both sockets. */
void bench_rawzmq_close(bench_rawzmq_t *z);

/*  Sends one message of the three frames without blocking. Returns 0, or -1 when a frame was
    refused (HWM reached). Inline: it is what the baseline times. */
static inline int bench_rawzmq_send(const bench_rawzmq_t *z, const bench_frames_t *f)
{
    if (zmq_send(z->pub_sock, f->topic, f->topic_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(z->pub_sock, f->envelope, f->envelope_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(z->pub_sock, f->payload, f->payload_size, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

#endif
