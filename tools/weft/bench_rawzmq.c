/*  bench_rawzmq.c - the raw libzmq PUB/SUB pair, warm-up and receiving thread of the
    benchmarks' baseline (bench_rawzmq.h). */
#include "bench_rawzmq.h"

#include <sched.h>
#include <stdbool.h>
#include <string.h>

#include "bench_stats.h"

int bench_rawzmq_open(bench_rawzmq_t *z, const char *topic, int hwm)
{
    memset(z, 0, sizeof(*z));
    z->sub = zsock_new(ZMQ_SUB);
    z->pub = zsock_new(ZMQ_PUB);
    if (!z->sub || !z->pub)
        return -1;
    zsock_set_rcvhwm(z->sub, hwm);
    zsock_set_linger(z->sub, 0);
    zsock_set_subscribe(z->sub, topic);
    zsock_set_sndhwm(z->pub, hwm);
    zsock_set_immediate(z->pub, 1);
    zsock_set_linger(z->pub, 0);
    if (zsock_bind(z->sub, "tcp://127.0.0.1:*") < 0 ||
        zsock_connect(z->pub, "%s", zsock_endpoint(z->sub)) < 0)
        return -2;
    z->pub_sock = zsock_resolve(z->pub);
    z->sub_sock = zsock_resolve(z->sub);
    return 0;
}

/*  Receives the rest of a multipart message into m. */
static void s_rest(void *sock, zmq_msg_t *m)
{
    while (zmq_msg_more(m) && zmq_msg_recv(m, sock, 0) >= 0)
        ;
}

int bench_rawzmq_warm_up(bench_rawzmq_t *z, const bench_frames_t *f, int timeout_ms)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    zmq_pollitem_t item = {z->sub_sock, 0, ZMQ_POLLIN, 0};
    zmq_msg_t m;
    zmq_msg_init(&m);
    bool got = false;
    while (!got && bench_now_ns() < deadline && !zsys_interrupted) {
        bench_rawzmq_send(z, f);
        if (zmq_poll(&item, 1, 1) > 0 && zmq_msg_recv(&m, z->sub_sock, ZMQ_DONTWAIT) >= 0) {
            s_rest(z->sub_sock, &m);
            got = true;
        }
    }
    while (got && zmq_poll(&item, 1, BENCH_RAWZMQ_DRAIN_MS) > 0)
        if (zmq_msg_recv(&m, z->sub_sock, ZMQ_DONTWAIT) >= 0)
            s_rest(z->sub_sock, &m);
    zmq_msg_close(&m);
    return got ? 0 : -1;
}

/*  The receiving thread: counts messages until it has them all or the socket's receive
    timeout (idle_ms) passes without one. */
static void *s_receiver(void *arg)
{
    bench_rawsub_t *rs = arg;
    zmq_msg_t m;
    zmq_msg_init(&m);
    atomic_store(&rs->running, true);
    while (rs->received < rs->expect) {
        if (zmq_msg_recv(&m, rs->sock, 0) < 0)
            break;
        s_rest(rs->sock, &m);
        rs->received++;
        rs->last_ns = bench_now_ns();
    }
    zmq_msg_close(&m);
    return NULL;
}

int bench_rawzmq_receive(bench_rawzmq_t *z, uint64_t expect, int idle_ms)
{
    zsock_set_rcvtimeo(z->sub, idle_ms);
    z->rx.sock = z->sub_sock;
    z->rx.expect = expect;
    z->rx.received = 0;
    z->rx.last_ns = 0;
    atomic_init(&z->rx.running, false);
    if (pthread_create(&z->thread, NULL, s_receiver, &z->rx) != 0)
        return -1;
    while (!atomic_load(&z->rx.running))
        sched_yield();
    return 0;
}

void bench_rawzmq_wait(bench_rawzmq_t *z)
{
    pthread_join(z->thread, NULL);
}

void bench_rawzmq_close(bench_rawzmq_t *z)
{
    zsock_destroy(&z->pub);
    zsock_destroy(&z->sub);
}
