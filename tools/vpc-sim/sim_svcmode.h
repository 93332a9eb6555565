/* vpc-sim: how the metadata service and STS behave: up, gone, or answering malformed documents. */
#ifndef CLW_SIM_SVCMODE_H
#define CLW_SIM_SVCMODE_H

#include <stddef.h>

enum clw_sim_svcmode_kind {
    CLW_SIM_SVC_UP,             /* answers normally */
    CLW_SIM_SVC_DROP,           /* closes the connection without an answer */
    CLW_SIM_SVC_HTTP,           /* answers HTTP status with a small HTML body */
    CLW_SIM_SVC_NOT_JSON,       /* answers 200 with a body that is not JSON */
    CLW_SIM_SVC_MISSING_FIELDS, /* answers 200 JSON without the credentials */
};

struct clw_sim_svcmode {
    enum clw_sim_svcmode_kind kind;
    int status; /* CLW_SIM_SVC_HTTP: 400..599 */
};

/* Parses "up", "drop", "http:N" (N in 400..599), "not-json" or "missing-fields". Returns 0, or
 * -1 (mode unchanged). */
int clw_sim_svcmode_parse(const char *text, struct clw_sim_svcmode *mode);

/* The spelling clw_sim_svcmode_parse reads. */
void clw_sim_svcmode_format(const struct clw_sim_svcmode *mode, char *out, size_t outsz);

#endif
