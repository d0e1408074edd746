/*  bench_dlq.h - `weft bench dlq`: the DLQ's acknowledged PUT throughput and its redelivery
    throughput, each next to raw LMDB and raw ZeroMQ baselines measured in the same run
    (bench_dlq.c).
*/
#ifndef WEFT_BENCH_DLQ_H_INCLUDED
#define WEFT_BENCH_DLQ_H_INCLUDED

/*  Runs the benchmark; argv[0] is "dlq". Returns the exit status (0, 1 failure, 2 usage,
    130 interrupted). */
int bench_dlq(int argc, char **argv);

#endif
