/* The worker: wires Kafka, validation, signing, HTTP, classification, retries and offsets into
 * one single-threaded event loop. The only module that uses the adapters together. */
#ifndef CLW_WORKER_H
#define CLW_WORKER_H

#include <signal.h>

#include "clw/config.h"

/* Exit statuses of the contract. */
enum clw_exit {
    CLW_EXIT_OK = 0,
    CLW_EXIT_CONFIG = 1,
    CLW_EXIT_FATAL = 2,
    CLW_EXIT_WORKER_FAULT = 3,
    CLW_EXIT_UNCOMMITTED = 4, /* stopped, but the final commit did not reach the coordinator */
};

/* How main.c talks to the running loop. The flags are set by signal handlers; wake_fd is the
 * read end of a self-pipe written by them (or -1). reload is called on SIGHUP to re-read
 * credential files and log.level into cfg; it returns 0 or -1 (cfg unchanged on failure). */
struct clw_worker_io {
    volatile sig_atomic_t *stop;
    volatile sig_atomic_t *hup;
    int wake_fd;
    int (*reload)(struct clw_config *cfg, void *arg);
    void *reload_arg;
};

/* Resolves the credential chain of cfg (contract section 9) and describes its source in out,
 * never a secret; temporary credentials are fetched (a blocking request: for --check-config,
 * not the running loop) to tell when they expire. Returns 0, -1 with err. */
int clw_worker_describe_credentials(const struct clw_config *cfg, char *out, size_t len, char *err,
                                    size_t errlen);

/* Runs until a stop signal (then drains within worker.shutdown_timeout_ms) or a fatal error.
 * cfg is borrowed (secrets may be replaced on SIGHUP). Returns an enum clw_exit status. */
int clw_worker_run(struct clw_config *cfg, const struct clw_worker_io *io);

#endif
