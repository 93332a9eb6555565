/* clw-mock-broker: librdkafka's mock Kafka cluster as its own process, driven by stdin commands. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MB_BROKERS_MAX 16
#define MB_TOPICS_MAX  64
#define MB_LINE_MAX    4096
#define MB_PUSH_MAX    100000

/* A --topic NAME:PARTITIONS argument. */
struct mb_topic {
    char name[256];
    int partitions;
};

struct mb_options {
    int brokers;
    const char *bootstrap_file;
    struct mb_topic topics[MB_TOPICS_MAX];
    int topic_cnt;
};

/* Kafka protocol request types the control channel knows by name (numbers are accepted too). */
struct mb_apikey {
    const char *name;
    int16_t key;
};

static const struct mb_apikey mb_apikeys[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"ApiVersion", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

/* Signal handler -> main loop: the handler writes the signal number to this pipe. */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t n = write(sig_pipe[1], &c, 1);

    (void)n;
    errno = saved;
}

/* Only warnings and worse reach stderr; stdout carries the control protocol alone. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)
        fprintf(stderr, "clw-mock-broker: %s: %s\n", fac, buf);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: clw-mock-broker [--brokers N] [--topic NAME:PARTITIONS]... "
            "[--bootstrap-file F]\n"
            "\n"
            "Runs librdkafka's mock Kafka cluster (listeners on 127.0.0.1, random ports), prints\n"
            "'bootstrap=HOST:PORT,...' on stdout, then reads one command per line on stdin and\n"
            "answers 'ok' or 'error: ...' on stdout:\n"
            "  topic NAME PARTITIONS          create a topic\n"
            "  broker-down ID | broker-up ID  disconnect / reconnect a broker (-1: all)\n"
            "  rtt ID MS                      delay every response of a broker (-1: all)\n"
            "  push-errors APIKEY ERR COUNT   fail the next COUNT requests of APIKEY with ERR\n"
            "                                 (e.g. push-errors Produce NOT_LEADER_FOR_PARTITION "
            "3)\n"
            "  clear-errors APIKEY            drop pending injected errors of APIKEY\n"
            "  leader TOPIC PARTITION ID      move a partition's leader (-1: leaderless)\n"
            "  ping                           answer ok\n"
            "  quit                           stop (so do stdin EOF, SIGTERM and SIGINT)\n");
}

/* Parses a whole decimal integer within [min, max]; returns 0 on success, -1 otherwise. */
static int parse_int(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_apikey(const char *s, int16_t *out)
{
    long v;
    size_t i;

    for (i = 0; i < sizeof(mb_apikeys) / sizeof(mb_apikeys[0]); i++) {
        if (strcasecmp(s, mb_apikeys[i].name) == 0) {
            *out = mb_apikeys[i].key;
            return 0;
        }
    }
    if (parse_int(s, 0, INT16_MAX, &v) != 0)
        return -1;
    *out = (int16_t)v;
    return 0;
}

/* Error by librdkafka name (NOT_LEADER_FOR_PARTITION, _TRANSPORT, with or without the
 * RD_KAFKA_RESP_ERR_ prefix) or by number. */
static int parse_error(const char *s, rd_kafka_resp_err_t *out)
{
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";
    const struct rd_kafka_err_desc *descs = NULL;
    size_t cnt = 0;
    size_t i;
    long v;

    if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0)
        s += sizeof(prefix) - 1;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (i = 0; i < cnt; i++) {
        if (descs[i].name != NULL && strcasecmp(s, descs[i].name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    if (parse_int(s, INT_MIN, INT_MAX, &v) != 0)
        return -1;
    *out = (rd_kafka_resp_err_t)v;
    return 0;
}

static int parse_topic_arg(const char *arg, struct mb_topic *topic)
{
    const char *colon = strrchr(arg, ':');
    size_t len;
    long v;

    if (colon == NULL || colon == arg)
        return -1;
    len = (size_t)(colon - arg);
    if (len >= sizeof(topic->name))
        return -1;
    if (parse_int(colon + 1, 1, 100000, &v) != 0)
        return -1;
    memcpy(topic->name, arg, len);
    topic->name[len] = '\0';
    topic->partitions = (int)v;
    return 0;
}

/* Returns 0 and fills opts, 1 for --help, -1 on a usage error (already reported). */
static int parse_options(int argc, char **argv, struct mb_options *opts)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'n'},
        {"topic", required_argument, NULL, 't'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    long v;

    opts->brokers = 1;
    opts->bootstrap_file = NULL;
    opts->topic_cnt = 0;
    for (;;) {
        c = getopt_long(argc, argv, "n:t:f:h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'n':
            if (parse_int(optarg, 1, MB_BROKERS_MAX, &v) != 0) {
                fprintf(stderr, "clw-mock-broker: --brokers must be 1..%d\n", MB_BROKERS_MAX);
                return -1;
            }
            opts->brokers = (int)v;
            break;
        case 't':
            if (opts->topic_cnt == MB_TOPICS_MAX ||
                parse_topic_arg(optarg, &opts->topics[opts->topic_cnt]) != 0) {
                fprintf(stderr, "clw-mock-broker: bad --topic '%s' (NAME:PARTITIONS)\n", optarg);
                return -1;
            }
            opts->topic_cnt++;
            break;
        case 'f':
            opts->bootstrap_file = optarg;
            break;
        case 'h':
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Writes "bootstrap=..." to path via a temporary file and rename, so readers never see half. */
static int write_bootstrap_file(const char *path, const char *bootstraps)
{
    char tmp[4096];
    FILE *f = NULL;
    int n;
    int ret = -1;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        goto fail;
    f = fopen(tmp, "w");
    if (f == NULL)
        goto fail;
    if (fprintf(f, "bootstrap=%s\n", bootstraps) < 0)
        goto fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto fail;
    ret = 0;
fail:
    if (f != NULL)
        fclose(f);
    if (ret != 0) {
        fprintf(stderr, "clw-mock-broker: cannot write %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    return ret;
}

static int mock_err_reply(char *reply, size_t size, rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reply, size, "error: %s", rd_kafka_err2str(err));
        return -1;
    }
    snprintf(reply, size, "ok");
    return 0;
}

static int cmd_push_errors(rd_kafka_mock_cluster_t *mcluster, char **args, int argc, char *reply,
                           size_t size)
{
    rd_kafka_resp_err_t *errs = NULL;
    rd_kafka_resp_err_t err;
    int16_t apikey;
    long cnt;
    long i;
    int ret = -1;

    if (argc != 4) {
        snprintf(reply, size, "error: usage: push-errors APIKEY ERR COUNT");
        goto fail;
    }
    if (parse_apikey(args[1], &apikey) != 0) {
        snprintf(reply, size, "error: unknown API key '%s'", args[1]);
        goto fail;
    }
    if (parse_error(args[2], &err) != 0) {
        snprintf(reply, size, "error: unknown error '%s'", args[2]);
        goto fail;
    }
    if (parse_int(args[3], 1, MB_PUSH_MAX, &cnt) != 0) {
        snprintf(reply, size, "error: COUNT must be 1..%d", MB_PUSH_MAX);
        goto fail;
    }
    errs = calloc((size_t)cnt, sizeof(*errs));
    if (errs == NULL) {
        snprintf(reply, size, "error: out of memory");
        goto fail;
    }
    for (i = 0; i < cnt; i++)
        errs[i] = err;
    rd_kafka_mock_push_request_errors_array(mcluster, apikey, (size_t)cnt, errs);
    snprintf(reply, size, "ok");
    ret = 0;
fail:
    free(errs);
    return ret;
}

/* Runs one control command; fills reply; returns 1 for quit, 0 otherwise. */
static int run_command(rd_kafka_mock_cluster_t *mcluster, int replication, char *line, char *reply,
                       size_t size)
{
    char *args[8];
    char *save = NULL;
    char *tok;
    int argc = 0;
    long a;
    long b;
    int16_t apikey;

    tok = strtok_r(line, " \t\r", &save);
    while (tok != NULL && argc < (int)(sizeof(args) / sizeof(args[0]))) {
        args[argc++] = tok;
        tok = strtok_r(NULL, " \t\r", &save);
    }
    if (tok != NULL) {
        snprintf(reply, size, "error: too many arguments");
        return 0;
    }
    if (argc == 0) {
        snprintf(reply, size, "error: empty command");
    } else if (strcmp(args[0], "quit") == 0 && argc == 1) {
        snprintf(reply, size, "ok");
        return 1;
    } else if (strcmp(args[0], "ping") == 0 && argc == 1) {
        snprintf(reply, size, "ok");
    } else if (strcmp(args[0], "topic") == 0 && argc == 3) {
        if (parse_int(args[2], 1, 100000, &a) != 0)
            snprintf(reply, size, "error: PARTITIONS must be 1..100000");
        else
            mock_err_reply(reply, size,
                           rd_kafka_mock_topic_create(mcluster, args[1], (int)a, replication));
    } else if ((strcmp(args[0], "broker-down") == 0 || strcmp(args[0], "broker-up") == 0) &&
               argc == 2) {
        if (parse_int(args[1], -1, INT32_MAX, &a) != 0)
            snprintf(reply, size, "error: bad broker id '%s'", args[1]);
        else if (strcmp(args[0], "broker-down") == 0)
            mock_err_reply(reply, size, rd_kafka_mock_broker_set_down(mcluster, (int32_t)a));
        else
            mock_err_reply(reply, size, rd_kafka_mock_broker_set_up(mcluster, (int32_t)a));
    } else if (strcmp(args[0], "rtt") == 0 && argc == 3) {
        if (parse_int(args[1], -1, INT32_MAX, &a) != 0 || parse_int(args[2], 0, INT_MAX, &b) != 0)
            snprintf(reply, size, "error: usage: rtt ID MS");
        else
            mock_err_reply(reply, size, rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)a, (int)b));
    } else if (strcmp(args[0], "push-errors") == 0) {
        cmd_push_errors(mcluster, args, argc, reply, size);
    } else if (strcmp(args[0], "clear-errors") == 0 && argc == 2) {
        if (parse_apikey(args[1], &apikey) != 0) {
            snprintf(reply, size, "error: unknown API key '%s'", args[1]);
        } else {
            rd_kafka_mock_clear_request_errors(mcluster, apikey);
            snprintf(reply, size, "ok");
        }
    } else if (strcmp(args[0], "leader") == 0 && argc == 4) {
        if (parse_int(args[2], 0, INT32_MAX, &a) != 0 || parse_int(args[3], -1, INT32_MAX, &b) != 0)
            snprintf(reply, size, "error: usage: leader TOPIC PARTITION ID");
        else
            mock_err_reply(
                reply, size,
                rd_kafka_mock_partition_set_leader(mcluster, args[1], (int32_t)a, (int32_t)b));
    } else {
        snprintf(reply, size, "error: unknown command or wrong argument count: %s", args[0]);
    }
    return 0;
}

static int reply_line(const char *reply)
{
    if (printf("%s\n", reply) < 0 || fflush(stdout) != 0)
        return -1;
    return 0;
}

/* Reads commands until quit, stdin EOF, a signal or a dead stdout. Blocks in poll(), never
 * spins: stdin and the signal pipe are the only wake-ups. */
static void command_loop(rd_kafka_mock_cluster_t *mcluster, int replication)
{
    char buf[MB_LINE_MAX];
    char reply[512];
    size_t used = 0;
    int done = 0;
    int eof = 0;
    struct pollfd pfd[2];
    ssize_t n;
    char *nl;
    size_t len;

    while (!done) {
        pfd[0].fd = STDIN_FILENO;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = sig_pipe[0];
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "clw-mock-broker: poll: %s\n", strerror(errno));
            break;
        }
        if (pfd[1].revents != 0)
            break;
        if (pfd[0].revents == 0)
            continue;
        n = read(STDIN_FILENO, buf + used, sizeof(buf) - 1 - used);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            break;
        }
        if (n == 0)
            eof = 1;
        used += (size_t)n;
        buf[used] = '\0';
        /* Handle every complete line; at EOF the unterminated rest counts as one too. */
        for (;;) {
            nl = memchr(buf, '\n', used);
            if (nl == NULL && !(eof && used > 0) && used < sizeof(buf) - 1)
                break;
            if (nl == NULL) {
                if (!eof) {
                    reply_line("error: line too long");
                    used = 0;
                    break;
                }
                nl = buf + used;
            }
            *nl = '\0';
            len = (size_t)(nl - buf);
            if (run_command(mcluster, replication, buf, reply, sizeof(reply)) == 1)
                done = 1;
            if (reply_line(reply) != 0)
                done = 1;
            if (done)
                break;
            if (len >= used) {
                used = 0;
            } else {
                memmove(buf, buf + len + 1, used - len - 1);
                used -= len + 1;
            }
            buf[used] = '\0';
        }
        if (eof)
            break;
    }
}

static int setup_signals(void)
{
    struct sigaction sa;

    if (pipe(sig_pipe) != 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    struct mb_options opts;
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    rd_kafka_resp_err_t err;
    const char *bootstraps;
    int replication;
    int i;
    int rc = 1;
    int r;

    r = parse_options(argc, argv, &opts);
    if (r != 0) {
        if (r == 1) {
            usage(stdout);
            rc = 0;
        } else {
            rc = 2;
        }
        goto fail;
    }
    if (setup_signals() != 0) {
        fprintf(stderr, "clw-mock-broker: signal setup: %s\n", strerror(errno));
        goto fail;
    }

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "clw-mock-broker", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "clw-mock-broker: %s\n", errstr);
        goto fail;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "clw-mock-broker: rd_kafka_new: %s\n", errstr);
        goto fail;
    }
    conf = NULL; /* now owned by rk */

    mcluster = rd_kafka_mock_cluster_new(rk, opts.brokers);
    if (mcluster == NULL) {
        fprintf(stderr, "clw-mock-broker: cannot create the mock cluster\n");
        goto fail;
    }
    replication = opts.brokers < 3 ? opts.brokers : 3;
    for (i = 0; i < opts.topic_cnt; i++) {
        err = rd_kafka_mock_topic_create(mcluster, opts.topics[i].name, opts.topics[i].partitions,
                                         replication);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "clw-mock-broker: topic %s: %s\n", opts.topics[i].name,
                    rd_kafka_err2str(err));
            goto fail;
        }
    }

    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (opts.bootstrap_file != NULL && write_bootstrap_file(opts.bootstrap_file, bootstraps) != 0)
        goto fail;
    if (printf("bootstrap=%s\n", bootstraps) < 0 || fflush(stdout) != 0)
        goto fail;

    command_loop(mcluster, replication);
    rc = 0;
fail:
    if (mcluster != NULL)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}
