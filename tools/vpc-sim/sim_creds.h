/* vpc-sim: the SecretId -> SecretKey table the simulator accepts, read from a file. */
#ifndef CLW_SIM_CREDS_H
#define CLW_SIM_CREDS_H

#include <stddef.h>

struct clw_sim_cred {
    char *secret_id;
    char *secret_key;
    char *token; /* NULL: the Token parameter is not checked */
};

struct clw_sim_creds {
    struct clw_sim_cred *items;
    size_t count;
};

/* Reads lines "SECRET_ID SECRET_KEY [TOKEN]" separated by blanks; blank lines and lines whose
 * first non-blank character is '#' are skipped. On failure writes "path:line: reason" into
 * err and returns -1. Keys are wiped when freed. */
int clw_sim_creds_load(struct clw_sim_creds *creds, const char *path, char *err, size_t errsz);

/* Index of secret_id in creds, or -1. */
int clw_sim_creds_find(const struct clw_sim_creds *creds, const char *secret_id);

void clw_sim_creds_free(struct clw_sim_creds *creds);

#endif
