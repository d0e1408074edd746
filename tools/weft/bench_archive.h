/*  bench_archive.h - `weft bench archive`: the archiver's durable ingest, ingest and memory as
    the archive grows, replay throughput and time to the first replayed event, each next to a
    raw LMDB or raw libzmq baseline measured in the same run (bench_archive.c).
*/
#ifndef WEFT_BENCH_ARCHIVE_H_INCLUDED
#define WEFT_BENCH_ARCHIVE_H_INCLUDED

/*  Runs the benchmark; argv[0] is "archive". Returns the exit status (0, 1 failure, 2 usage,
    130 interrupted). */
int bench_archive(int argc, char **argv);

#endif
