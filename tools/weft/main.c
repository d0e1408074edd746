/*  main.c - the `weft` command line: dispatches to one function per command. */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t s_commands[] = {
    {"pub", cmd_pub, "publish events: weft pub TOPIC [JSON|-] [--count N --rate R ...]"},
    {"sub", cmd_sub, "print events as JSON lines: weft sub PREFIX... [--count N --timeout S]"},
    {"bench", cmd_bench, "benchmarks against raw baselines: weft bench pubsub"},
    {"stat", cmd_stat, "one snapshot of the fabric from its heartbeats: weft stat [--json]"},
    {"replay", cmd_replay, "archived events as JSON lines: weft replay [--since T --follow ...]"},
    {"get", cmd_get, "one archived event by id: weft get ID"},
    {"archive", cmd_archive, "the archiver's state: weft archive info [--json]"},
    {"dlq", cmd_dlq, "dead letters: weft dlq list|show|retry|purge|stats"},
};
#define NCOMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

static void s_usage(FILE *out)
{
    fprintf(out, "weft %s - command line of the weft event fabric\n\n"
                 "usage: weft COMMAND [OPTIONS]\n\ncommands:\n",
            WEFT_VERSION_STRING);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out, "\n`weft COMMAND --help` describes a command and its options.\n"
                 "Configuration: WEFT_* environment variables and WEFT_CONFIG=FILE (ZPL) apply "
                 "to every command;\n`weft config` lists every setting with its current value.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("weft %s\n", WEFT_VERSION_STRING);
        return 0;
    }
    if (!strcmp(argv[1], "config")) {
        weft_config_t *cfg = weft_config_new();
        printf("settings (section/key = value), from code > WEFT_* environment > WEFT_CONFIG "
               "file > default:\n");
        weft_config_describe(cfg, stdout);
        weft_config_destroy(&cfg);
        return 0;
    }
    zsys_init();
    zsys_set_logident("weft");
    zsys_set_logstream(stderr); /* stdout carries the data (JSON lines) */
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], s_commands[i].name))
            return s_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weft: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}
