/*  bench_soak.h - `weft bench soak`: a fabric of separate node processes run at a fixed rate
    for a long time; losses, duplicates, repairs, end-to-end latency and each process's memory
    over time, next to a raw libzmq PUB/SUB latency baseline of the same run (bench_soak.c).
*/
#ifndef WEFT_BENCH_SOAK_H_INCLUDED
#define WEFT_BENCH_SOAK_H_INCLUDED

/*  Runs the benchmark (or, with the internal --worker option, one of its node processes);
    argv[0] is "soak". Returns the exit status (0, 1 failure or loss, 2 usage, 130
    interrupted). */
int bench_soak(int argc, char **argv);

#endif
