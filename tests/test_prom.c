/*  test_prom.c - tests of nodes/exporter/prom: a fabric snapshot in the Prometheus text
    exposition format 0.0.4, from hand-built heartbeats (hb_builder.h): the line grammar,
    # HELP / # TYPE before each family, exact counters, the cumulative latency histogram in
    seconds, label escaping, and the gauges derived from archiver and DLQ heartbeat maps.
*/
#include <ctype.h>
#include <stdbool.h>

#include "fabric_model.h"
#include "hb_builder.h"
#include "prom.h"
#include "testing.h"

/*  Renders a snapshot of m at now into a NUL-terminated text the caller frees. */
static char *t_render(fabric_model_t *m, int64_t now)
{
    fabric_snapshot_t *s = fabric_model_snapshot(m, now);
    size_t len = 0;
    char *text = s ? prom_render(s, &len) : NULL;
    fabric_snapshot_destroy(&s);
    if (text && strlen(text) != len) {
        free(text);
        return NULL;
    }
    return text;
}

/*  True when line is `name{label="value",...} number` (labels optional), as the format says. */
static bool t_sample_ok(const char *p)
{
    if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
        return false;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
        p++;
    if (*p == '{') {
        p++;
        for (;;) {
            if (!(isalpha((unsigned char)*p) || *p == '_'))
                return false;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            if (*p++ != '=' || *p++ != '"')
                return false;
            while (*p && *p != '"') {
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return false;
                }
                if (!*p)
                    return false;
                p++;
            }
            if (*p++ != '"')
                return false;
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p++ != '}')
                return false;
            break;
        }
    }
    if (*p++ != ' ')
        return false;
    if (!strcmp(p, "+Inf") || !strcmp(p, "-Inf") || !strcmp(p, "NaN"))
        return true;
    char *end;
    strtod(p, &end);
    return end != p && *end == 0;
}

/*  Checks every line of text: samples well-formed, each family's # HELP and # TYPE before its
    samples, a family's samples together. Returns the number of problems (printed). */
static int t_lint(char *text)
{
    int bad = 0;
    char types[256][128];
    size_t ntypes = 0;
    char current[128] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "# HELP ", 7))
            continue;
        if (!strncmp(line, "# TYPE ", 7)) {
            char name[128], type[32];
            if (sscanf(line + 7, "%127s %31s", name, type) != 2) {
                fprintf(stderr, "  bad TYPE line: %s\n", line), bad++;
                continue;
            }
            for (size_t i = 0; i < ntypes; i++)
                if (!strcmp(types[i], name))
                    fprintf(stderr, "  family %s typed twice\n", name), bad++;
            if (ntypes < 256)
                snprintf(types[ntypes++], sizeof(types[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
            continue;
        }
        if (line[0] == '#' || !t_sample_ok(line)) {
            fprintf(stderr, "  bad line: %s\n", line), bad++;
            continue;
        }
        char name[128];
        size_t n = strcspn(line, "{ ");
        snprintf(name, sizeof(name), "%.*s", (int)(n < sizeof(name) ? n : sizeof(name) - 1), line);
        bool ours = !strcmp(name, current);
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
        for (size_t i = 0; i < 3 && !ours; i++) {
            char full[160];
            snprintf(full, sizeof(full), "%s%s", current, suffixes[i]);
            ours = !strcmp(name, full);
        }
        if (!ours)
            fprintf(stderr, "  sample outside its family (%s): %s\n", current, line), bad++;
    }
    return bad;
}

/*  A small fabric: a publisher, a subscriber with latencies and an odd name, an archiver and
    a DLQ, each heard twice. */
static fabric_model_t *t_fabric(void)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t pub = {.inst = 11, .name = "pub", .role = "cli", .uptime_ms = 1000,
                  .published = (1ull << 60) + 1, .ntopics = 1,
                  .topics = {{"task.created", 500, 5000, 0, 0}}};
    t_hb_t sub = {.inst = 22, .name = "sub\"x\\y", .role = "svc", .uptime_ms = 1000,
                  .received = 500, .latency = true, .ntopics = 1,
                  .topics = {{"task.created", 0, 0, 500, 5000}}};
    t_hb_t arch = {.inst = 33, .name = "archiver", .role = "archiver", .uptime_ms = 1000,
                   .section_key = "archive",
                   .section_json = "{\"last_offset\": 12345, \"events_per_s\": 99.5,"
                                   " \"retention\": {\"max_age_s\": 3600}, \"note\": \"text\"}"};
    t_hb_t dlq = {.inst = 44, .name = "dlq", .role = "dlq", .uptime_ms = 1000,
                  .section_key = "dlq",
                  .section_json = "{\"pending\": 3, \"by_subscriber\": {\"mail\": {\"pending\": 2,"
                                  " \"parked\": 1}}, \"top_codes\": [[\"db.timeout\", 4]]}"};
    t_hb_t *all[] = {&pub, &sub, &arch, &dlq};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < 4; i++) {
            all[i]->uptime_ms += 1000 * (uint64_t)round;
            if (t_feed(m, all[i], T0 + 1000 * round) != 0) {
                fabric_model_destroy(&m);
                return NULL;
            }
        }
    return m;
}

TEST_CASE("every line follows the format, each family typed once before its samples", lint)
{
    fabric_model_t *m = t_fabric();
    CHECK(m);
    char *text = t_render(m, T0 + 1000);
    CHECK(text);
    CHECK(strstr(text, "# HELP weft_events_published_total "));
    CHECK(strstr(text, "# TYPE weft_events_published_total counter\n"));
    CHECK(strstr(text, "# TYPE weft_node_up gauge\n"));
    CHECK(strstr(text, "# TYPE weft_delivery_latency_seconds histogram\n"));
    int bad = t_lint(text);
    free(text);
    fabric_model_destroy(&m);
    CHECK_EQ_INT(bad, 0);
}

TEST_CASE("counters are exact and per node, with node, role and instance labels", counters)
{
    fabric_model_t *m = t_fabric();
    CHECK(m);
    char *text = t_render(m, T0 + 1000);
    CHECK(text);
    CHECK(strstr(text, "weft_events_published_total{node=\"pub\",role=\"cli\",instance=\"11\"} "
                       "1152921504606846977\n"));
    CHECK(strstr(text, "weft_node_up{node=\"pub\",role=\"cli\",instance=\"11\"} 1\n"));
    CHECK(strstr(text, "weft_topic_events_total{topic=\"task.created\",node=\"pub\",role=\"cli\","
                       "instance=\"11\",direction=\"out\"} 500\n"));
    CHECK(strstr(text, "weft_topic_bytes_total{topic=\"task.created\",node=\"sub\\\"x\\\\y\","
                       "role=\"svc\",instance=\"22\",direction=\"in\"} 5000\n"));
    CHECK(strstr(text, "weft_fabric_nodes{state=\"up\"} 4\n"));
    CHECK(strstr(text, "weft_exporter_heartbeats_total{result=\"accepted\"} 8\n"));
    free(text);
    /* silent for more than 3 heartbeats: down */
    text = t_render(m, T0 + 5000);
    CHECK(text);
    CHECK(strstr(text, "weft_node_up{node=\"pub\",role=\"cli\",instance=\"11\"} 0\n"));
    CHECK(strstr(text, "weft_fabric_nodes{state=\"down\"} 4\n"));
    free(text);
    fabric_model_destroy(&m);
}

TEST_CASE("the latency histogram is cumulative, in seconds, and +Inf equals _count", histogram)
{
    fabric_model_t *m = t_fabric();
    CHECK(m);
    char *text = t_render(m, T0 + 1000);
    CHECK(text);
    /* hb_builder: bounds 1, 2, 4 us; counts 10, 80, 9, 1; sum 250 us */
    const char *l = "node=\"sub\\\"x\\\\y\",role=\"svc\",instance=\"22\"";
    char want[512];
    static const char *const lines[] = {"_bucket{%s,le=\"1e-06\"} 10\n",
                                        "_bucket{%s,le=\"2e-06\"} 90\n",
                                        "_bucket{%s,le=\"4e-06\"} 99\n",
                                        "_bucket{%s,le=\"+Inf\"} 100\n", "_sum{%s} 0.00025\n",
                                        "_count{%s} 100\n"};
    const char *at = text;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int n = snprintf(want, sizeof(want), "weft_delivery_latency_seconds");
        snprintf(want + n, sizeof(want) - (size_t)n, lines[i], l);
        const char *hit = strstr(at, want);
        if (!hit)
            fprintf(stderr, "  missing or out of order: %s", want);
        CHECK(hit);
        at = hit;
    }
    /* nodes without a histogram in their heartbeat have none */
    CHECK(!strstr(text, "weft_delivery_latency_seconds_count{node=\"pub\""));
    free(text);
    fabric_model_destroy(&m);
}

TEST_CASE("archiver and DLQ figures become gauges, breakdowns labelled samples", sections)
{
    fabric_model_t *m = t_fabric();
    CHECK(m);
    char *text = t_render(m, T0 + 1000);
    CHECK(text);
    const char *a = "{node=\"archiver\",role=\"archiver\",instance=\"33\"";
    const char *d = "{node=\"dlq\",role=\"dlq\",instance=\"44\"";
    char want[512];
    snprintf(want, sizeof(want), "# TYPE weft_archiver_last_offset gauge\n"
                                 "weft_archiver_last_offset%s} 12345\n", a);
    CHECK(strstr(text, want));
    snprintf(want, sizeof(want), "weft_archiver_events_per_s%s} 99.5\n", a);
    CHECK(strstr(text, want));
    snprintf(want, sizeof(want), "weft_archiver_retention%s,key=\"max_age_s\"} 3600\n", a);
    CHECK(strstr(text, want));
    CHECK(!strstr(text, "weft_archiver_note")); /* text values give no sample */
    snprintf(want, sizeof(want), "weft_dlq_pending%s} 3\n", d);
    CHECK(strstr(text, want));
    snprintf(want, sizeof(want), "weft_dlq_by_subscriber_pending%s,subscriber=\"mail\"} 2\n", d);
    CHECK(strstr(text, want));
    snprintf(want, sizeof(want), "weft_dlq_by_subscriber_parked%s,subscriber=\"mail\"} 1\n", d);
    CHECK(strstr(text, want));
    snprintf(want, sizeof(want), "weft_dlq_top_codes%s,code=\"db.timeout\"} 4\n", d);
    CHECK(strstr(text, want));
    free(text);
    fabric_model_destroy(&m);
}

TEST_CASE("label values escape backslash, double quote and newline", escape)
{
    char out[64];
    CHECK_EQ_INT(prom_escape_label("a\"b\\c\nd", out, sizeof(out)), 10);
    CHECK_STR(out, "a\\\"b\\\\c\\nd");
    CHECK_EQ_INT(prom_escape_label("plain", out, sizeof(out)), 5);
    CHECK_STR(out, "plain");
    CHECK_EQ_INT(prom_escape_label("\"\"\"", out, 4), 6); /* cut, never a half escape */
    CHECK_STR(out, "\\\"");
}

TEST_CASE("an empty fabric still renders every fixed family", empty)
{
    fabric_model_t *m = fabric_model_new();
    char *text = t_render(m, T0);
    CHECK(text);
    CHECK(strstr(text, "# TYPE weft_node_up gauge\n"));
    CHECK(strstr(text, "weft_fabric_nodes{state=\"up\"} 0\n"));
    CHECK_EQ_INT(t_lint(text), 0);
    free(text);
    fabric_model_destroy(&m);
}

int main(void)
{
    RUN_CASE("every line follows the format, each family typed once before its samples", lint);
    RUN_CASE("counters are exact and per node, with node, role and instance labels", counters);
    RUN_CASE("the latency histogram is cumulative, in seconds, and +Inf equals _count",
             histogram);
    RUN_CASE("archiver and DLQ figures become gauges, breakdowns labelled samples", sections);
    RUN_CASE("label values escape backslash, double quote and newline", escape);
    RUN_CASE("an empty fabric still renders every fixed family", empty);
    return TEST_EXIT();
}
