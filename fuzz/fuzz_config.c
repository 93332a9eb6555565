/* Fuzz target: configuration file parsing, -X arguments, environment, finalize and dump. */
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

#include "clw/config.h"

/*
 * Input: the whole input is a configuration file; then every line of it is also applied as a
 * -X argument, and the first line is what every TENCENTCLOUD_* variable holds. A secret set
 * before the input must appear in no error message and not in the dump.
 */
#define CFG_MARKER "FuzzSecretMarker7q"

static const char *cfg_env_value;

static const char *cfg_getenv(const char *name)
{
    (void)name;
    return cfg_env_value;
}

static int cfg_has_marker(const char *s)
{
    return strstr(s, CFG_MARKER) != NULL;
}

/* 1 when any 4 consecutive bytes of the marker occur in p: the input could then spell the
 * marker itself, e.g. as "-X FuzzSecret=Marker7q" echoed in an error. */
static int cfg_bytes_have_marker(const uint8_t *p, size_t n)
{
    size_t m = strlen(CFG_MARKER);

    for (size_t i = 0; i + 4 <= n; i++) {
        for (size_t j = 0; j + 4 <= m; j++) {
            if (memcmp(p + i, &CFG_MARKER[j], 4) == 0)
                return 1;
        }
    }
    return 0;
}

static void cfg_check_strings(const struct clw_config *cfg)
{
    CLW_FUZZ_CHECK(
        cfg->kafka_group_id != NULL && cfg->topic_requests != NULL && cfg->topic_results != NULL &&
        cfg->topic_dlq != NULL && cfg->api_endpoint != NULL && cfg->api_region != NULL &&
        cfg->api_secret_id != NULL && cfg->api_secret_key != NULL && cfg->api_token != NULL &&
        cfg->api_ca_file != NULL && cfg->metrics_listen != NULL && cfg->log_level != NULL &&
        cfg->log_format != NULL);
    for (size_t i = 0; i < cfg->kafka_props_len; i++)
        CLW_FUZZ_CHECK(cfg->kafka_props[i].name != NULL && cfg->kafka_props[i].name[0] != '\0' &&
                       cfg->kafka_props[i].value != NULL && cfg->kafka_props[i].source != NULL);
}

/* An error message is NUL-terminated, not empty, and holds no secret. */
static void cfg_check_err(const char *err, size_t errlen, int rc, int check_marker)
{
    CLW_FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    if (rc != 0)
        CLW_FUZZ_CHECK(err[0] != '\0');
    if (check_marker)
        CLW_FUZZ_CHECK(!cfg_has_marker(err));
}

/* Writes the input to a fresh temporary file; its path goes to path. */
static int cfg_write_temp(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
    int fd;
    size_t off = 0;

    snprintf(path, pathlen, "/tmp/clw-fuzz-config-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return -1;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);

        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)w;
    }
    close(fd);
    return 0;
}

static void cfg_dump(const struct clw_config *cfg, int check_marker)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    CLW_FUZZ_CHECK(out != NULL);
    clw_config_dump(cfg, out);
    CLW_FUZZ_CHECK(fclose(out) == 0);
    CLW_FUZZ_CHECK(text != NULL && strlen(text) == len);
    if (check_marker)
        CLW_FUZZ_CHECK(!cfg_has_marker(text));
    free(text);
}

int clw_fuzz_config(const uint8_t *data, size_t size)
{
    struct clw_config cfg;
    char path[64];
    char err[512];
    char *text;
    char *line;
    char *next;
    char *first = NULL;
    int check_marker;
    int rc;

    text = malloc(size + 1);
    CLW_FUZZ_CHECK(text != NULL);
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    check_marker = !cfg_bytes_have_marker(data, size);

    CLW_FUZZ_CHECK(clw_config_init(&cfg) == 0);
    cfg_check_strings(&cfg);
    CLW_FUZZ_CHECK(clw_config_set_arg(&cfg, "api.secret_key=" CFG_MARKER, err, sizeof(err)) == 0);
    CLW_FUZZ_CHECK(
        clw_config_set_arg(&cfg, "kafka.sasl.password=" CFG_MARKER "2", err, sizeof(err)) == 0);

    if (cfg_write_temp(data, size, path, sizeof(path)) == 0) {
        err[0] = '\0';
        rc = clw_config_load_file(&cfg, path, err, sizeof(err));
        cfg_check_err(err, sizeof(err), rc, check_marker);
        unlink(path);
    }

    /* Every line as a -X argument (a NUL inside a line ends it early, as in argv). */
    for (line = text; line != NULL; line = next) {
        next = memchr(line, '\n', (size_t)(text + size - line));
        if (next != NULL)
            *next++ = '\0';
        if (first == NULL)
            first = line;
        err[0] = '\0';
        rc = clw_config_set_arg(&cfg, line, err, sizeof(err));
        cfg_check_err(err, sizeof(err), rc, check_marker);
    }
    cfg_check_strings(&cfg);

    cfg_env_value = first;
    err[0] = '\0';
    rc = clw_config_apply_env(&cfg, cfg_getenv, err, sizeof(err));
    cfg_check_err(err, sizeof(err), rc, check_marker);
    cfg_env_value = NULL;

    err[0] = '\0';
    rc = clw_config_finalize(&cfg, err, sizeof(err));
    cfg_check_err(err, sizeof(err), rc, check_marker);
    cfg_check_strings(&cfg);
    if (rc == 0) {
        struct clw_endpoint ep;

        CLW_FUZZ_CHECK(clw_config_parse_endpoint(cfg.api_endpoint, &ep, err, sizeof(err)) == 0);
        CLW_FUZZ_CHECK(strcmp(cfg.topic_requests, cfg.topic_results) != 0);
    }
    cfg_dump(&cfg, check_marker);
    clw_config_free(&cfg);
    free(text);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_config(data, size);
}
#endif
