/* vpc-sim: the SecretId -> SecretKey table the simulator accepts, read from a file. */
#include "sim_creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_sign.h"

#define FIELD_SEPS " \t\r\n"

static int add_cred(struct clw_sim_creds *creds, const char *id, const char *key, const char *token)
{
    struct clw_sim_cred *items = realloc(creds->items, (creds->count + 1) * sizeof(*items));
    struct clw_sim_cred *cred;

    if (items == NULL)
        return -1;
    creds->items = items;
    cred = &items[creds->count];
    cred->secret_id = strdup(id);
    cred->secret_key = strdup(key);
    cred->token = token != NULL ? strdup(token) : NULL;
    creds->count++;
    if (cred->secret_id == NULL || cred->secret_key == NULL || (token != NULL && !cred->token))
        return -1;
    return 0;
}

int clw_sim_creds_load(struct clw_sim_creds *creds, const char *path, char *err, size_t errsz)
{
    FILE *fp = fopen(path, "r");
    char line[4096];
    int lineno = 0;
    int rc = -1;

    if (fp == NULL) {
        snprintf(err, errsz, "%s: cannot open", path);
        goto fail;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *save = NULL;
        char *id = strtok_r(line, FIELD_SEPS, &save);
        char *key;
        char *token;

        lineno++;
        if (id == NULL || id[0] == '#')
            continue;
        key = strtok_r(NULL, FIELD_SEPS, &save);
        token = key != NULL ? strtok_r(NULL, FIELD_SEPS, &save) : NULL;
        if (key == NULL || (token != NULL && strtok_r(NULL, FIELD_SEPS, &save) != NULL)) {
            snprintf(err, errsz, "%s:%d: expected SECRET_ID SECRET_KEY [TOKEN]", path, lineno);
            goto fail;
        }
        if (clw_sim_creds_find(creds, id) >= 0) {
            snprintf(err, errsz, "%s:%d: SecretId listed twice", path, lineno);
            goto fail;
        }
        if (add_cred(creds, id, key, token) != 0) {
            snprintf(err, errsz, "%s:%d: out of memory", path, lineno);
            goto fail;
        }
    }
    if (creds->count == 0) {
        snprintf(err, errsz, "%s: no credentials", path);
        goto fail;
    }
    rc = 0;

fail:
    clw_sim_sign_wipe(line, sizeof(line));
    if (fp != NULL)
        fclose(fp);
    return rc;
}

int clw_sim_creds_find(const struct clw_sim_creds *creds, const char *secret_id)
{
    for (size_t i = 0; i < creds->count; i++) {
        if (strcmp(creds->items[i].secret_id, secret_id) == 0)
            return (int)i;
    }
    return -1;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        clw_sim_sign_wipe(s, strlen(s));
        free(s);
    }
}

void clw_sim_creds_free(struct clw_sim_creds *creds)
{
    for (size_t i = 0; i < creds->count; i++) {
        free(creds->items[i].secret_id);
        free_secret(creds->items[i].secret_key);
        free_secret(creds->items[i].token);
    }
    free(creds->items);
    creds->items = NULL;
    creds->count = 0;
}
