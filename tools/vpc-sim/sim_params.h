/* vpc-sim: request parameters decoded from a query string or a urlencoded form body. */
#ifndef CLW_SIM_PARAMS_H
#define CLW_SIM_PARAMS_H

#include <stddef.h>

/* One decoded parameter. The name is normalised ('_' replaced by '.', as the v2 signature
 * rule does), so "instanceIds_0" and "instanceIds.0" are the same parameter. Owned strings. */
struct clw_sim_param {
    char *name;
    char *value;
};

struct clw_sim_params {
    struct clw_sim_param *items;
    size_t count;
    size_t cap;
};

enum clw_sim_params_err {
    CLW_SIM_PARAMS_OK = 0,
    CLW_SIM_PARAMS_BAD_ENCODING, /* a '%' without two hex digits, %00, or an empty name */
    CLW_SIM_PARAMS_DUPLICATE,    /* the same (normalised) name twice */
    CLW_SIM_PARAMS_TOO_MANY,     /* more than CLW_SIM_PARAMS_MAX parameters */
    CLW_SIM_PARAMS_NOMEM,
};

#define CLW_SIM_PARAMS_MAX 1024

/* Decodes "a=1&b=x%2Fy" (len bytes, not necessarily NUL-terminated) and appends the pairs to
 * params: '+' is a space, %XX a byte, a name without '=' has an empty value, empty segments
 * are skipped. On an error params keeps what was appended before it. */
enum clw_sim_params_err clw_sim_params_parse(struct clw_sim_params *params, const char *data,
                                             size_t len);

/* Appends one already-decoded pair (the name is normalised). Used by tests and admin code. */
enum clw_sim_params_err clw_sim_params_add(struct clw_sim_params *params, const char *name,
                                           const char *value);

/* Value of the parameter called name (normalised spelling), or NULL. Linear: requests carry
 * a handful of parameters. */
const char *clw_sim_params_get(const struct clw_sim_params *params, const char *name);

void clw_sim_params_free(struct clw_sim_params *params);

/* Short text for an error code. */
const char *clw_sim_params_strerror(enum clw_sim_params_err err);

#endif
