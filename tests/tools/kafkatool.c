/* clw-kafkatool: test utility that creates topics, produces, consumes and reads offsets. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>

#define KT_PROPS_MAX 64

/* Exit codes. */
#define KT_EXIT_OK      0
#define KT_EXIT_FAIL    1
#define KT_EXIT_USAGE   2
#define KT_EXIT_TIMEOUT 3

struct kt_options {
    const char *cmd;
    const char *bootstrap;
    const char *topic;
    const char *group;
    long count; /* -1: no count */
    long timeout_ms;
    long idle_ms; /* 0: off */
    int from_beginning;
    int eof;
    const char *props[KT_PROPS_MAX]; /* "name=value", pointing into argv */
    int prop_cnt;
    char **args; /* positional arguments after the subcommand */
    int arg_cnt;
};

/* Delivery bookkeeping of `produce`, reached through the conf opaque. */
struct kt_delivery {
    long ok;
    long failed;
};

static const char kt_usage[] =
    "usage: clw-kafkatool COMMAND -b BOOTSTRAP [-X prop=value]... [options] [args]\n"
    "\n"
    "Commands:\n"
    "  create-topics NAME:PARTITIONS...\n"
    "      CreateTopics with replication factor 1; an existing topic is fine. Exit 0 when\n"
    "      every topic exists afterwards. The mock cluster does not implement CreateTopics\n"
    "      (the request times out): use clw-mock-broker's 'topic' command there.\n"
    "  produce -t TOPIC\n"
    "      One JSON object per stdin line: {\"key\": str|null, \"key_b64\": str,\n"
    "      \"value\": str|null, \"value_b64\": str, \"partition\": N, \"headers\": {name: "
    "str|null}}.\n"
    "      A null or absent value (and no value_b64) produces a tombstone. Idempotent "
    "producer,\n"
    "      acks=all. Prints 'produced N' (delivered count); exit 0 only if every line was\n"
    "      delivered.\n"
    "  consume -t TOPIC [-g GROUP] [-n COUNT] [--timeout-ms MS] [--idle-ms MS] [--eof]\n"
    "          [--from-beginning]\n"
    "      Without -g: assigns every partition at the beginning, joins no group and commits\n"
    "      nothing. With -g: subscribes as a member of GROUP (auto commit on), starting at\n"
    "      the committed offsets, or the beginning where none; --from-beginning ignores\n"
    "      committed offsets. isolation.level=read_committed.\n"
    "      Prints one JSON line per message: {\"topic\", \"partition\", \"offset\", \"key\",\n"
    "      \"value\", \"headers\": {name: str|null}, \"timestamp\"}. A key or value that is\n"
    "      not NUL-free UTF-8 is printed as null plus \"key_b64\"/\"value_b64\"; such header\n"
    "      values go to \"headers_b64\". A tombstone has \"value\": null and no value_b64.\n"
    "      Stops at the first of: COUNT messages; --timeout-ms (default 30000) since start;\n"
    "      --idle-ms without a message once at least one message arrived; with --eof, every\n"
    "      assigned partition at its end. Exit 0 unless COUNT was given and not reached\n"
    "      (exit 3).\n"
    "  committed -g GROUP -t TOPIC\n"
    "      Reads GROUP's committed offsets without joining it, and the watermarks. Prints\n"
    "      {\"topic\", \"group\", \"partitions\": [{\"partition\", \"committed\", \"low\", "
    "\"high\"}]};\n"
    "      committed is -1001 when the group has none.\n"
    "  metadata [--timeout-ms MS]\n"
    "      Retries until the cluster answers a metadata request, then prints\n"
    "      {\"brokers\": N, \"topics\": [{\"name\", \"partitions\"}]}. Exit 1 on timeout.\n"
    "\n"
    "Exit codes: 0 success, 1 failure, 2 usage error, 3 consume timeout before COUNT.\n";

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int parse_long(const char *s, long min, long max, long *out)
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

/* ---- bytes <-> JSON text ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a NUL-terminated standard base64 (padded) encoding; caller frees. */
static char *b64_encode(const unsigned char *in, size_t len)
{
    char *out = malloc(((len + 2) / 3) * 4 + 1);
    size_t i;
    size_t o = 0;
    uint32_t v;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    const char *p;

    if (c == '\0')
        return -1;
    p = strchr(b64_alphabet, c);
    return p == NULL ? -1 : (int)(p - b64_alphabet);
}

/* Decodes padded or unpadded standard base64; returns a malloc'd buffer (never NULL on success,
 * even for empty input) or NULL on bad input. */
static unsigned char *b64_decode(const char *in, size_t *lenp)
{
    size_t inlen = strlen(in);
    unsigned char *out = NULL;
    unsigned char *ret = NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    size_t i;
    int v;

    while (inlen > 0 && in[inlen - 1] == '=')
        inlen--;
    out = malloc(inlen * 3 / 4 + 1);
    if (out == NULL)
        goto fail;
    for (i = 0; i < inlen; i++) {
        v = b64_value(in[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6)
        goto fail;
    *lenp = o;
    ret = out;
    out = NULL;
fail:
    free(out);
    return ret;
}

/* True when the bytes are valid UTF-8 (no overlongs, surrogates or > U+10FFFF) without NUL,
 * i.e. representable as a C string in a JSON document. */
static int is_text(const unsigned char *s, size_t len)
{
    size_t i = 0;
    size_t n;
    size_t k;
    uint32_t cp;

    while (i < len) {
        if (s[i] == 0)
            return 0;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xe0) == 0xc0) {
            n = 1;
            cp = s[i] & 0x1f;
        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 2;
            cp = s[i] & 0x0f;
        } else if ((s[i] & 0xf8) == 0xf0) {
            n = 3;
            cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n >= len - i)
            return 0;
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Adds bytes as obj[name] (string), or null; non-text bytes also go to b64obj[b64name]. */
static int add_bytes(cJSON *obj, const char *name, cJSON *b64obj, const char *b64name,
                     const void *data, size_t len)
{
    char *copy = NULL;
    char *enc = NULL;
    int ret = -1;

    if (data == NULL) {
        if (cJSON_AddNullToObject(obj, name) == NULL)
            goto fail;
    } else if (is_text(data, len)) {
        copy = malloc(len + 1);
        if (copy == NULL)
            goto fail;
        memcpy(copy, data, len);
        copy[len] = '\0';
        if (cJSON_AddStringToObject(obj, name, copy) == NULL)
            goto fail;
    } else {
        enc = b64_encode(data, len);
        if (enc == NULL || cJSON_AddNullToObject(obj, name) == NULL ||
            cJSON_AddStringToObject(b64obj, b64name, enc) == NULL)
            goto fail;
    }
    ret = 0;
fail:
    free(copy);
    free(enc);
    return ret;
}

/* ---- configuration ---- */

/* Builds a conf: bootstrap.servers, then the command's defaults (name, value pairs, NULL
 * terminated), then every -X (so the user wins). */
static rd_kafka_conf_t *make_conf(const struct kt_options *o, const char *const *defaults)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_t *ret = NULL;
    char errstr[512];
    char name[256];
    const char *eq;
    size_t len;
    int i;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto fail;
    for (i = 0; defaults != NULL && defaults[i] != NULL; i += 2) {
        if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    }
    for (i = 0; i < o->prop_cnt; i++) {
        eq = strchr(o->props[i], '=');
        len = eq == NULL ? 0 : (size_t)(eq - o->props[i]);
        if (eq == NULL || len == 0 || len >= sizeof(name)) {
            snprintf(errstr, sizeof(errstr), "-X %s: expected prop=value", o->props[i]);
            goto fail;
        }
        memcpy(name, o->props[i], len);
        name[len] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    ret = conf;
    conf = NULL;
fail:
    if (conf != NULL) {
        fprintf(stderr, "clw-kafkatool: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return ret;
}

/* Creates a handle; takes ownership of conf whatever happens. */
static rd_kafka_t *make_handle(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk;

    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "clw-kafkatool: rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Waits until metadata shows topic with partitions; returns the partition count or -1. */
static int wait_partitions(rd_kafka_t *rk, const char *topic, int64_t deadline)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    int64_t left;
    int64_t start;
    int cnt = -1;

    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        err = rd_kafka_last_error();
        goto fail;
    }
    for (;;) {
        start = now_ms();
        left = deadline - start;
        if (left <= 0)
            break;
        err = rd_kafka_metadata(rk, 0, rkt, &md, (int)(left < 2000 ? left : 2000));
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topics[0].partition_cnt > 0)
                cnt = md->topics[0].partition_cnt;
            else if (md->topic_cnt == 1)
                err = md->topics[0].err;
            rd_kafka_metadata_destroy(md);
            md = NULL;
            if (cnt > 0)
                break;
        }
        /* Answers such as "unknown topic" come back at once: back off before asking again. */
        if (now_ms() - start < 100)
            sleep_ms(100);
    }
fail:
    if (cnt < 0)
        fprintf(stderr, "clw-kafkatool: topic %s: no partitions: %s\n", topic,
                rd_kafka_err2str(err));
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return cnt;
}

/* ---- create-topics ---- */

static int cmd_create_topics(const struct kt_options *o)
{
    static const char *const defaults[] = {NULL};
    rd_kafka_NewTopic_t *newts[64];
    size_t newt_cnt = 0;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_AdminOptions_t *aopts = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tres;
    rd_kafka_resp_err_t err;
    char errstr[512];
    char name[256];
    const char *colon;
    size_t tres_cnt = 0;
    size_t i;
    long parts;
    int rc = KT_EXIT_FAIL;

    if (o->arg_cnt == 0 || o->arg_cnt > 64) {
        fprintf(stderr, "clw-kafkatool: create-topics needs 1..64 NAME:PARTITIONS\n");
        rc = KT_EXIT_USAGE;
        goto fail;
    }
    for (i = 0; i < (size_t)o->arg_cnt; i++) {
        colon = strrchr(o->args[i], ':');
        if (colon == NULL || colon == o->args[i] || (size_t)(colon - o->args[i]) >= sizeof(name) ||
            parse_long(colon + 1, 1, 100000, &parts) != 0) {
            fprintf(stderr, "clw-kafkatool: bad topic '%s' (NAME:PARTITIONS)\n", o->args[i]);
            rc = KT_EXIT_USAGE;
            goto fail;
        }
        memcpy(name, o->args[i], (size_t)(colon - o->args[i]));
        name[colon - o->args[i]] = '\0';
        newts[newt_cnt] = rd_kafka_NewTopic_new(name, (int)parts, 1, errstr, sizeof(errstr));
        if (newts[newt_cnt] == NULL) {
            fprintf(stderr, "clw-kafkatool: %s: %s\n", name, errstr);
            goto fail;
        }
        newt_cnt++;
    }

    conf = make_conf(o, defaults);
    if (conf == NULL)
        goto fail;
    rk = make_handle(RD_KAFKA_PRODUCER, conf);
    if (rk == NULL)
        goto fail;
    aopts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_request_timeout(aopts, (int)o->timeout_ms, errstr,
                                                  sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_operation_timeout(aopts, (int)o->timeout_ms, errstr,
                                                    sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: %s\n", errstr);
        goto fail;
    }
    queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, newts, newt_cnt, aopts, queue);
    ev = rd_kafka_queue_poll(queue, (int)o->timeout_ms + 5000);
    if (ev == NULL) {
        fprintf(stderr, "clw-kafkatool: CreateTopics: no result in time\n");
        goto fail;
    }
    err = rd_kafka_event_error(ev);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: CreateTopics: %s\n", rd_kafka_event_error_string(ev));
        goto fail;
    }
    res = rd_kafka_event_CreateTopics_result(ev);
    if (res == NULL) {
        fprintf(stderr, "clw-kafkatool: CreateTopics: unexpected event %s\n",
                rd_kafka_event_name(ev));
        goto fail;
    }
    tres = rd_kafka_CreateTopics_result_topics(res, &tres_cnt);
    rc = KT_EXIT_OK;
    for (i = 0; i < tres_cnt; i++) {
        err = rd_kafka_topic_result_error(tres[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s: created\n", rd_kafka_topic_result_name(tres[i]));
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            printf("%s: exists\n", rd_kafka_topic_result_name(tres[i]));
        } else {
            fprintf(stderr, "clw-kafkatool: %s: %s\n", rd_kafka_topic_result_name(tres[i]),
                    rd_kafka_topic_result_error_string(tres[i]) != NULL
                        ? rd_kafka_topic_result_error_string(tres[i])
                        : rd_kafka_err2str(err));
            rc = KT_EXIT_FAIL;
        }
    }
fail:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (queue != NULL)
        rd_kafka_queue_destroy(queue);
    if (aopts != NULL)
        rd_kafka_AdminOptions_destroy(aopts);
    for (i = 0; i < newt_cnt; i++)
        rd_kafka_NewTopic_destroy(newts[i]);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return rc;
}

/* ---- produce ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct kt_delivery *dlv = opaque;

    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dlv->ok++;
    } else {
        if (dlv->failed < 10)
            fprintf(stderr, "clw-kafkatool: delivery failed: %s\n", rd_kafka_err2str(msg->err));
        dlv->failed++;
    }
}

/* Reads obj[name] (string or null) or obj[b64name] (base64) into a malloc'd buffer; *datap is
 * NULL for null/absent. Returns 0, or -1 on a wrong type or bad base64. */
static int json_bytes(const cJSON *obj, const char *name, const char *b64name,
                      unsigned char **datap, size_t *lenp)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(obj, b64name);
    unsigned char *data = NULL;
    size_t len = 0;
    int ret = -1;

    if (b64 != NULL && !cJSON_IsNull(b64)) {
        if (!cJSON_IsString(b64))
            goto fail;
        data = b64_decode(b64->valuestring, &len);
        if (data == NULL)
            goto fail;
    } else if (item != NULL && !cJSON_IsNull(item)) {
        if (!cJSON_IsString(item))
            goto fail;
        len = strlen(item->valuestring);
        data = malloc(len + 1);
        if (data == NULL)
            goto fail;
        memcpy(data, item->valuestring, len + 1);
    }
    ret = 0;
fail:
    *datap = data;
    *lenp = len;
    return ret;
}

/* Builds the headers of one record; *hdrsp stays NULL when there are none. */
static int json_headers(const cJSON *obj, rd_kafka_headers_t **hdrsp)
{
    const cJSON *hobj = cJSON_GetObjectItemCaseSensitive(obj, "headers");
    const cJSON *h;
    rd_kafka_headers_t *hdrs = NULL;
    int ret = -1;

    if (hobj == NULL || cJSON_IsNull(hobj)) {
        ret = 0;
        goto fail;
    }
    if (!cJSON_IsObject(hobj))
        goto fail;
    hdrs = rd_kafka_headers_new(8);
    cJSON_ArrayForEach(h, hobj)
    {
        if (cJSON_IsNull(h)) {
            rd_kafka_header_add(hdrs, h->string, -1, NULL, 0);
        } else if (cJSON_IsString(h)) {
            rd_kafka_header_add(hdrs, h->string, -1, h->valuestring,
                                (ssize_t)strlen(h->valuestring));
        } else {
            goto fail;
        }
    }
    ret = 0;
fail:
    if (ret != 0 && hdrs != NULL) {
        rd_kafka_headers_destroy(hdrs);
        hdrs = NULL;
    }
    *hdrsp = hdrs;
    return ret;
}

/* Produces one JSON line; returns 0 when it was handed to librdkafka. */
static int produce_line(rd_kafka_t *rk, const char *topic, const char *line, long lineno)
{
    cJSON *obj = NULL;
    const cJSON *part;
    unsigned char *key = NULL;
    unsigned char *value = NULL;
    size_t key_len = 0;
    size_t value_len = 0;
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t err;
    int32_t partition = RD_KAFKA_PARTITION_UA;
    int ret = -1;

    obj = cJSON_Parse(line);
    if (obj == NULL || !cJSON_IsObject(obj)) {
        fprintf(stderr, "clw-kafkatool: stdin:%ld: not a JSON object\n", lineno);
        goto fail;
    }
    if (json_bytes(obj, "key", "key_b64", &key, &key_len) != 0 ||
        json_bytes(obj, "value", "value_b64", &value, &value_len) != 0) {
        fprintf(stderr, "clw-kafkatool: stdin:%ld: bad key or value\n", lineno);
        goto fail;
    }
    part = cJSON_GetObjectItemCaseSensitive(obj, "partition");
    if (part != NULL && !cJSON_IsNull(part)) {
        if (!cJSON_IsNumber(part) || part->valuedouble < 0 || part->valuedouble > INT32_MAX) {
            fprintf(stderr, "clw-kafkatool: stdin:%ld: bad partition\n", lineno);
            goto fail;
        }
        partition = (int32_t)part->valuedouble;
    }
    if (json_headers(obj, &hdrs) != 0) {
        fprintf(stderr, "clw-kafkatool: stdin:%ld: headers must map names to strings\n", lineno);
        goto fail;
    }
    for (;;) {
        /* An empty value is produced from a non-NULL pointer so it stays distinct from a
         * tombstone; with F_COPY librdkafka copies what it needs. */
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: stdin:%ld: produce: %s\n", lineno, rd_kafka_err2str(err));
        goto fail;
    }
    hdrs = NULL; /* now owned by the message */
    ret = 0;
fail:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    free(key);
    free(value);
    cJSON_Delete(obj);
    return ret;
}

static int cmd_produce(const struct kt_options *o)
{
    static const char *const defaults[] = {"enable.idempotence", "true", "acks", "all",
                                           "linger.ms",          "5",    NULL};
    struct kt_delivery dlv = {0, 0};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    long queued = 0;
    long bad = 0;
    int rc = KT_EXIT_FAIL;

    if (o->topic == NULL || o->arg_cnt != 0) {
        fprintf(stderr, "clw-kafkatool: produce needs -t TOPIC and no arguments\n");
        rc = KT_EXIT_USAGE;
        goto fail;
    }
    conf = make_conf(o, defaults);
    if (conf == NULL)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &dlv);
    rk = make_handle(RD_KAFKA_PRODUCER, conf);
    if (rk == NULL)
        goto fail;

    for (;;) {
        n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (produce_line(rk, o->topic, line, lineno) == 0)
            queued++;
        else
            bad++;
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, (int)o->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "clw-kafkatool: flush timed out with %d messages in flight\n",
                rd_kafka_outq_len(rk));
    printf("produced %ld\n", dlv.ok);
    if (bad == 0 && dlv.failed == 0 && dlv.ok == queued)
        rc = KT_EXIT_OK;
fail:
    free(line);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return rc;
}

/* ---- consume ---- */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    const struct kt_options *o = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    int i;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (i = 0; o->from_beginning && i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
    } else {
        if (cooperative)
            rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, NULL);
    }
}

static int print_message(const rd_kafka_message_t *msg)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *b64 = cJSON_CreateObject();
    cJSON *hobj;
    cJSON *hb64 = NULL;
    cJSON *item;
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    const char *hname;
    const void *hval;
    size_t hlen;
    size_t idx;
    char *text = NULL;
    int ret = -1;

    if (obj == NULL || b64 == NULL)
        goto fail;
    cJSON_AddStringToObject(obj, "topic", rd_kafka_topic_name(msg->rkt));
    cJSON_AddNumberToObject(obj, "partition", msg->partition);
    cJSON_AddNumberToObject(obj, "offset", (double)msg->offset);
    if (add_bytes(obj, "key", b64, "key_b64", msg->key, msg->key_len) != 0 ||
        add_bytes(obj, "value", b64, "value_b64", msg->payload, msg->len) != 0)
        goto fail;
    hobj = cJSON_AddObjectToObject(obj, "headers");
    if (hobj == NULL)
        goto fail;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (idx = 0;
             rd_kafka_header_get_all(hdrs, idx, &hname, &hval, &hlen) == RD_KAFKA_RESP_ERR_NO_ERROR;
             idx++) {
            if (hb64 == NULL)
                hb64 = cJSON_CreateObject();
            if (hb64 == NULL || add_bytes(hobj, hname, hb64, hname, hval, hlen) != 0)
                goto fail;
        }
    }
    if (hb64 != NULL && cJSON_GetArraySize(hb64) > 0) {
        cJSON_AddItemToObject(obj, "headers_b64", hb64);
        hb64 = NULL;
    }
    cJSON_AddNumberToObject(obj, "timestamp", (double)rd_kafka_message_timestamp(msg, &tstype));
    /* key_b64 / value_b64 go last so that the common fields read first. */
    while (b64->child != NULL) {
        item = cJSON_DetachItemViaPointer(b64, b64->child);
        cJSON_AddItemToObject(obj, item->string, item);
    }
    text = cJSON_PrintUnformatted(obj);
    if (text == NULL || puts(text) < 0)
        goto fail;
    ret = 0;
fail:
    free(text);
    cJSON_Delete(hb64);
    cJSON_Delete(b64);
    cJSON_Delete(obj);
    return ret;
}

/* Partition end tracking for --eof: a flag per partition, cleared by each message. */
struct kt_eof {
    char *at_end;
    int cnt;
};

static int eof_mark(struct kt_eof *eof, int32_t partition, int value)
{
    char *grown;

    if (partition < 0)
        return 0;
    if (partition >= eof->cnt) {
        grown = realloc(eof->at_end, (size_t)partition + 1);
        if (grown == NULL)
            return -1;
        memset(grown + eof->cnt, 0, (size_t)(partition + 1 - eof->cnt));
        eof->at_end = grown;
        eof->cnt = partition + 1;
    }
    eof->at_end[partition] = (char)value;
    return 0;
}

/* True when the consumer has an assignment and every assigned partition is at its end. */
static int eof_all(rd_kafka_t *rk, const struct kt_eof *eof)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int all = 0;
    int i;

    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto fail;
    all = parts->cnt > 0;
    for (i = 0; all && i < parts->cnt; i++) {
        if (parts->elems[i].partition >= eof->cnt || !eof->at_end[parts->elems[i].partition])
            all = 0;
    }
fail:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    return all;
}

static int cmd_consume(const struct kt_options *o)
{
    /* fetch.wait.max.ms: a fetch that includes an empty partition is held that long, which
     * would add 500 ms (the default) to every short test read. */
    static const char *const defaults[] = {"isolation.level",
                                           "read_committed",
                                           "auto.offset.reset",
                                           "earliest",
                                           "enable.partition.eof",
                                           "true",
                                           "session.timeout.ms",
                                           "6000",
                                           "fetch.wait.max.ms",
                                           "100",
                                           NULL};
    struct kt_eof eof = {NULL, 0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_message_t *msg;
    rd_kafka_resp_err_t err;
    char errstr[512];
    char group[64];
    int64_t deadline;
    int64_t last = 0;
    int64_t now;
    int64_t wait;
    long got = 0;
    int done = 0;
    int pcnt;
    int i;
    int rc = KT_EXIT_FAIL;

    if (o->topic == NULL || o->arg_cnt != 0) {
        fprintf(stderr, "clw-kafkatool: consume needs -t TOPIC and no arguments\n");
        rc = KT_EXIT_USAGE;
        goto fail;
    }
    deadline = now_ms() + o->timeout_ms;
    conf = make_conf(o, defaults);
    if (conf == NULL)
        goto fail;
    /* Without -g the handle still needs a group.id for the consumer API; it never joins or
     * commits, so a private name is enough. */
    snprintf(group, sizeof(group), "clw-kafkatool-%ld", (long)getpid());
    if (rd_kafka_conf_set(conf, "group.id", o->group != NULL ? o->group : group, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        (o->group == NULL && rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                                               sizeof(errstr)) != RD_KAFKA_CONF_OK)) {
        fprintf(stderr, "clw-kafkatool: %s\n", errstr);
        goto fail;
    }
    if (o->group != NULL) {
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_opaque(conf, (void *)o);
    }
    rk = make_handle(RD_KAFKA_CONSUMER, conf);
    conf = NULL;
    if (rk == NULL)
        goto fail;
    rd_kafka_poll_set_consumer(rk);

    pcnt = wait_partitions(rk, o->topic, deadline);
    if (pcnt < 0) {
        rc = o->count >= 0 ? KT_EXIT_TIMEOUT : KT_EXIT_FAIL;
        goto fail;
    }
    /* A subscription names each topic once, with no partition. */
    parts = rd_kafka_topic_partition_list_new(pcnt);
    if (o->group != NULL) {
        rd_kafka_topic_partition_list_add(parts, o->topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, parts);
    } else {
        for (i = 0; i < pcnt; i++)
            rd_kafka_topic_partition_list_add(parts, o->topic, i)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        err = rd_kafka_assign(rk, parts);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: %s: %s\n", o->group != NULL ? "subscribe" : "assign",
                rd_kafka_err2str(err));
        goto fail;
    }

    while (!done && (o->count < 0 || got < o->count)) {
        now = now_ms();
        wait = deadline - now;
        if (o->idle_ms > 0 && got > 0 && last + o->idle_ms - now < wait)
            wait = last + o->idle_ms - now;
        if (wait <= 0)
            break;
        msg = rd_kafka_consumer_poll(rk, (int)(wait < 1000 ? wait : 1000));
        if (msg == NULL) {
            fflush(stdout);
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (eof_mark(&eof, msg->partition, 1) != 0)
                done = 1;
            if (o->eof && eof_all(rk, &eof))
                done = 1;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "clw-kafkatool: consume: %s\n", rd_kafka_message_errstr(msg));
        } else {
            if (print_message(msg) != 0 || eof_mark(&eof, msg->partition, 0) != 0)
                done = 1;
            got++;
            last = now_ms();
        }
        rd_kafka_message_destroy(msg);
    }
    fflush(stdout);
    rc = o->count >= 0 && got < o->count ? KT_EXIT_TIMEOUT : KT_EXIT_OK;
fail:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(eof.at_end);
    return rc;
}

/* ---- committed ---- */

static int cmd_committed(const struct kt_options *o)
{
    static const char *const defaults[] = {"enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;
    cJSON *out = NULL;
    cJSON *arr;
    cJSON *p;
    char errstr[512];
    char *text = NULL;
    int64_t deadline = now_ms() + o->timeout_ms;
    int64_t lo;
    int64_t hi;
    int pcnt;
    int i;
    int rc = KT_EXIT_FAIL;

    if (o->topic == NULL || o->group == NULL || o->arg_cnt != 0) {
        fprintf(stderr, "clw-kafkatool: committed needs -g GROUP -t TOPIC\n");
        rc = KT_EXIT_USAGE;
        goto fail;
    }
    conf = make_conf(o, defaults);
    if (conf == NULL)
        goto fail;
    if (rd_kafka_conf_set(conf, "group.id", o->group, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "clw-kafkatool: %s\n", errstr);
        goto fail;
    }
    rk = make_handle(RD_KAFKA_CONSUMER, conf);
    conf = NULL;
    if (rk == NULL)
        goto fail;
    pcnt = wait_partitions(rk, o->topic, deadline);
    if (pcnt < 0)
        goto fail;
    parts = rd_kafka_topic_partition_list_new(pcnt);
    for (i = 0; i < pcnt; i++)
        rd_kafka_topic_partition_list_add(parts, o->topic, i);
    err = rd_kafka_committed(rk, parts, (int)o->timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: committed: %s\n", rd_kafka_err2str(err));
        goto fail;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "topic", o->topic);
    cJSON_AddStringToObject(out, "group", o->group);
    arr = cJSON_AddArrayToObject(out, "partitions");
    for (i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "clw-kafkatool: committed [%d]: %s\n", i,
                    rd_kafka_err2str(parts->elems[i].err));
            goto fail;
        }
        err = rd_kafka_query_watermark_offsets(rk, o->topic, parts->elems[i].partition, &lo, &hi,
                                               (int)o->timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "clw-kafkatool: watermarks [%d]: %s\n", i, rd_kafka_err2str(err));
            goto fail;
        }
        p = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, p);
        cJSON_AddNumberToObject(p, "partition", parts->elems[i].partition);
        cJSON_AddNumberToObject(p, "committed", (double)parts->elems[i].offset);
        cJSON_AddNumberToObject(p, "low", (double)lo);
        cJSON_AddNumberToObject(p, "high", (double)hi);
    }
    text = cJSON_PrintUnformatted(out);
    if (text == NULL || puts(text) < 0)
        goto fail;
    rc = KT_EXIT_OK;
fail:
    free(text);
    cJSON_Delete(out);
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}

/* ---- metadata ---- */

static int cmd_metadata(const struct kt_options *o)
{
    /* Short reconnect backoff: this command exists to notice a broker that is coming up. */
    static const char *const defaults[] = {"reconnect.backoff.ms", "50", "reconnect.backoff.max.ms",
                                           "500", NULL};
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    cJSON *out = NULL;
    cJSON *arr;
    cJSON *t;
    char *text = NULL;
    int64_t deadline = now_ms() + o->timeout_ms;
    int64_t start;
    int64_t left;
    int i;
    int rc = KT_EXIT_FAIL;

    conf = make_conf(o, defaults);
    if (conf == NULL)
        goto fail;
    rk = make_handle(RD_KAFKA_PRODUCER, conf);
    if (rk == NULL)
        goto fail;
    for (;;) {
        start = now_ms();
        left = deadline - start;
        if (left <= 0)
            break;
        err = rd_kafka_metadata(rk, 1, NULL, &md, (int)(left < 2000 ? left : 2000));
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (now_ms() - start < 100)
            sleep_ms(100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "clw-kafkatool: metadata: %s\n", rd_kafka_err2str(err));
        goto fail;
    }
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "brokers", md->broker_cnt);
    arr = cJSON_AddArrayToObject(out, "topics");
    for (i = 0; i < md->topic_cnt; i++) {
        t = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, t);
        cJSON_AddStringToObject(t, "name", md->topics[i].topic);
        cJSON_AddNumberToObject(t, "partitions", md->topics[i].partition_cnt);
    }
    text = cJSON_PrintUnformatted(out);
    if (text == NULL || puts(text) < 0)
        goto fail;
    rc = KT_EXIT_OK;
fail:
    free(text);
    cJSON_Delete(out);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return rc;
}

/* ---- main ---- */

/* Returns 0 and fills o, 1 for --help, -1 on a usage error (already reported). */
static int parse_options(int argc, char **argv, struct kt_options *o)
{
    enum { OPT_TIMEOUT = 256, OPT_IDLE, OPT_BEGIN, OPT_EOF };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"count", required_argument, NULL, 'n'},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"idle-ms", required_argument, NULL, OPT_IDLE},
        {"from-beginning", no_argument, NULL, OPT_BEGIN},
        {"eof", no_argument, NULL, OPT_EOF},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->count = -1;
    o->timeout_ms = 30000;
    if (argc < 2 || argv[1][0] == '-')
        return argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) ? 1 : -1;
    o->cmd = argv[1];
    argc--;
    argv++;
    for (;;) {
        c = getopt_long(argc, argv, "b:t:g:n:X:h", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'n':
            if (parse_long(optarg, 0, LONG_MAX, &o->count) != 0)
                return -1;
            break;
        case OPT_TIMEOUT:
            if (parse_long(optarg, 1, INT_MAX - 10000, &o->timeout_ms) != 0)
                return -1;
            break;
        case OPT_IDLE:
            if (parse_long(optarg, 1, INT_MAX, &o->idle_ms) != 0)
                return -1;
            break;
        case OPT_BEGIN:
            o->from_beginning = 1;
            break;
        case OPT_EOF:
            o->eof = 1;
            break;
        case 'X':
            if (o->prop_cnt == KT_PROPS_MAX)
                return -1;
            o->props[o->prop_cnt++] = optarg;
            break;
        case 'h':
            return 1;
        default:
            return -1;
        }
    }
    o->args = argv + optind;
    o->arg_cnt = argc - optind;
    if (o->bootstrap == NULL) {
        fprintf(stderr, "clw-kafkatool: -b BOOTSTRAP is required\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct kt_options o;
    int r;
    int rc;

    r = parse_options(argc, argv, &o);
    if (r == 1) {
        fputs(kt_usage, stdout);
        rc = KT_EXIT_OK;
    } else if (r != 0) {
        fputs(kt_usage, stderr);
        rc = KT_EXIT_USAGE;
    } else if (strcmp(o.cmd, "create-topics") == 0) {
        rc = cmd_create_topics(&o);
    } else if (strcmp(o.cmd, "produce") == 0) {
        rc = cmd_produce(&o);
    } else if (strcmp(o.cmd, "consume") == 0) {
        rc = cmd_consume(&o);
    } else if (strcmp(o.cmd, "committed") == 0) {
        rc = cmd_committed(&o);
    } else if (strcmp(o.cmd, "metadata") == 0) {
        rc = cmd_metadata(&o);
    } else {
        fprintf(stderr, "clw-kafkatool: unknown command '%s'\n", o.cmd);
        fputs(kt_usage, stderr);
        rc = KT_EXIT_USAGE;
    }
    return rc;
}
