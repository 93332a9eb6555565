/* classiclink-worker entry point: arguments, configuration, signals, exit status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clw/config.h"
#include "clw/kafka.h"
#include "clw/log.h"
#include "clw/worker.h"

static const char *const default_files[] = {
    "/etc/classiclink-worker/classiclink-worker.conf",
    "./conf/classiclink-worker.conf",
};

/* What the configuration was built from, kept for SIGHUP reloads. */
struct args {
    const char *file; /* NULL when none was found */
    const char **overrides;
    size_t n_overrides;
    int check_config;
};

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t hup_flag;
static int wake_wr = -1;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP) {
        hup_flag = 1;
    } else {
        if (stop_flag)
            _exit(CLW_EXIT_FATAL); /* second SIGTERM/SIGINT: at once */
        stop_flag = 1;
    }
    if (wake_wr >= 0) {
        ssize_t rc = write(wake_wr, "s", 1);
        (void)rc;
    }
    errno = saved;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: classiclink-worker [-c FILE] [-X key=value]... [--check-config] [--version] "
            "[--help]\n"
            "\n"
            "Consumes AttachClassicLinkVpc/DetachClassicLinkVpc requests from Kafka, calls the\n"
            "Tencent Cloud VPC API and publishes one outcome per request.\n"
            "\n"
            "  -c FILE          configuration file (default: the first existing of\n"
            "                   %s and %s)\n"
            "  -X key=value     set a configuration key (repeatable; wins over file and env)\n"
            "  --check-config   validate, print the effective configuration, exit 0 or 1\n"
            "  --version        print the version\n"
            "  --help           this text\n"
            "\n"
            "Credentials, first found: api.secret_id/api.secret_key (or their _file keys, or\n"
            "TENCENTCLOUD_SECRET_ID/_KEY), the profile file (~/.tencentcloud/credentials or\n"
            "TENCENTCLOUD_CREDENTIALS_FILE, section api.profile), a CVM role (api.role_name or\n"
            "the role the metadata service lists), OIDC on TKE (TKE_* variables).\n"
            "Signals: SIGTERM/SIGINT drain and exit 0 (4 when the final commit failed; a\n"
            "second signal exits 2 at once); SIGHUP re-reads credential files and log.level.\n",
            default_files[0], default_files[1]);
}

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

/* Builds the configuration from defaults, -X, the file and the environment. Returns 0 or -1
 * with the message in err. */
static int load_config(struct clw_config *cfg, const struct args *a, char *err, size_t errlen)
{
    if (clw_config_init(cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->n_overrides; i++)
        if (clw_config_set_arg(cfg, a->overrides[i], err, errlen) != 0)
            return -1;
    if (a->file != NULL && clw_config_load_file(cfg, a->file, err, errlen) != 0)
        return -1;
    if (clw_config_apply_env(cfg, env_lookup, err, errlen) != 0)
        return -1;
    return clw_config_finalize(cfg, err, errlen);
}

static int apply_log_settings(const struct clw_config *cfg)
{
    enum clw_log_level level;
    if (clw_log_level_parse(cfg->log_level, &level) != 0)
        return -1;
    clw_log_setup(level, strcmp(cfg->log_format, "text") != 0);
    return 0;
}

/* SIGHUP: credential files and log.level from a fresh read of the same sources. */
static int reload(struct clw_config *cfg, void *arg)
{
    const struct args *a = arg;
    struct clw_config fresh;
    char err[512];
    int rc = load_config(&fresh, a, err, sizeof(err));
    if (rc == 0)
        rc = clw_config_reload_secrets(cfg, err, sizeof(err));
    if (rc == 0) {
        free(cfg->log_level);
        cfg->log_level = fresh.log_level;
        fresh.log_level = strdup("info");
        apply_log_settings(cfg);
    } else {
        CLW_ERROR("reload: %s", err);
    }
    clw_config_free(&fresh);
    return rc;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    a->overrides = calloc((size_t)argc, sizeof(*a->overrides));
    if (a->overrides == NULL)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "-X") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "classiclink-worker: %s needs an argument\n", arg);
                return -1;
            }
            if (arg[1] == 'c')
                a->file = argv[++i];
            else
                a->overrides[a->n_overrides++] = argv[++i];
        } else if (strncmp(arg, "-X", 2) == 0 && arg[2] != '\0') {
            a->overrides[a->n_overrides++] = arg + 2;
        } else if (strcmp(arg, "--check-config") == 0) {
            a->check_config = 1;
        } else if (strcmp(arg, "--version") == 0) {
            printf("classiclink-worker %s\n", CLW_VERSION);
            return 1;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "classiclink-worker: unknown argument '%s'\n", arg);
            usage(stderr);
            return -1;
        }
    }
    if (a->file == NULL) {
        for (size_t i = 0; i < sizeof(default_files) / sizeof(default_files[0]); i++)
            if (access(default_files[i], F_OK) == 0) {
                a->file = default_files[i];
                break;
            }
    }
    return 0;
}

static int install_signals(void)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    wake_wr = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return fds[0];
}

int main(int argc, char **argv)
{
    struct args a;
    memset(&a, 0, sizeof(a));
    struct clw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char err[1024];
    int status = CLW_EXIT_CONFIG;

    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        status = rc > 0 ? CLW_EXIT_OK : CLW_EXIT_CONFIG;
        goto out;
    }
    if (load_config(&cfg, &a, err, sizeof(err)) != 0 ||
        clw_kafka_validate_config(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "classiclink-worker: configuration error: %s\n", err);
        goto out;
    }
    if (a.check_config) {
        char desc[1024];
        int creds_rc = clw_worker_describe_credentials(&cfg, desc, sizeof(desc), err, sizeof(err));
        if (creds_rc == 0)
            printf("# credentials: %s\n", desc); /* sorts before every key */
        clw_config_dump(&cfg, stdout);
        for (size_t i = 0; i < cfg.warnings_len; i++)
            fprintf(stderr, "classiclink-worker: warning: %s\n", cfg.warnings[i]);
        if (creds_rc != 0) {
            fprintf(stderr, "classiclink-worker: configuration error: %s\n", err);
            goto out;
        }
        status = CLW_EXIT_OK;
        goto out;
    }
    apply_log_settings(&cfg);
    for (size_t i = 0; i < cfg.warnings_len; i++)
        CLW_WARN("%s", cfg.warnings[i]);

    int wake_rd = install_signals();
    struct clw_worker_io io = {
        .stop = &stop_flag,
        .hup = &hup_flag,
        .wake_fd = wake_rd,
        .reload = reload,
        .reload_arg = &a,
    };
    status = clw_worker_run(&cfg, &io);
out:
    clw_config_free(&cfg);
    free(a.overrides);
    return status;
}
