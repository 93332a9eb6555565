/* vpc-sim: temporary credentials issued by the metadata service and STS, with their expiry. */
#include "sim_tmpcreds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sim_sign.h"

static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char token_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* n random characters of set (set_len of them) into out, terminated. */
static int random_text(char *out, size_t n, const char *set, size_t set_len)
{
    unsigned char bytes[CLW_SIM_TMP_TOKEN_LEN];

    if (n > sizeof(bytes) || RAND_bytes(bytes, (int)n) != 1)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = set[bytes[i] % set_len];
    out[n] = '\0';
    clw_sim_sign_wipe(bytes, sizeof(bytes));
    return 0;
}

static void free_cred(struct clw_sim_tmpcred *cred)
{
    if (cred != NULL) {
        clw_sim_sign_wipe(cred, sizeof(*cred));
        free(cred);
    }
}

/* The map keeps its slots when cleared and holds fewer keys than before: puts cannot fail. */
static void reindex(struct clw_sim_tmpcreds *creds)
{
    clw_sim_map_clear(&creds->index);
    for (size_t i = 0; i < creds->count; i++)
        clw_sim_map_put(&creds->index, creds->items[i]->secret_id, (uint32_t)i);
}

/* Makes room for one more: drops those expired at now, or else the oldest quarter. */
static void prune(struct clw_sim_tmpcreds *creds, int64_t now)
{
    size_t kept = 0;
    size_t drop_oldest = 0;

    for (size_t i = 0; i < creds->count; i++) {
        if (creds->items[i]->expires > now)
            continue;
        free_cred(creds->items[i]);
        creds->items[i] = NULL;
    }
    for (size_t i = 0; i < creds->count; i++) {
        if (creds->items[i] != NULL)
            creds->items[kept++] = creds->items[i];
    }
    if (kept == creds->count) {
        drop_oldest = creds->count / 4;
        for (size_t i = 0; i < drop_oldest; i++)
            free_cred(creds->items[i]);
        memmove(creds->items, creds->items + drop_oldest,
                (creds->count - drop_oldest) * sizeof(*creds->items));
        kept = creds->count - drop_oldest;
    }
    creds->count = kept;
    reindex(creds);
}

const struct clw_sim_tmpcred *clw_sim_tmpcreds_issue(struct clw_sim_tmpcreds *creds,
                                                     enum clw_sim_tmp_source source,
                                                     const char *account, int64_t now,
                                                     int64_t life_s)
{
    struct clw_sim_tmpcred *cred;

    if (creds->count >= CLW_SIM_TMP_MAX)
        prune(creds, now);
    if (creds->count == creds->cap) {
        size_t cap = creds->cap == 0 ? 16 : creds->cap * 2;
        struct clw_sim_tmpcred **items = realloc(creds->items, cap * sizeof(*items));

        if (items == NULL)
            return NULL;
        creds->items = items;
        creds->cap = cap;
    }
    cred = calloc(1, sizeof(*cred));
    if (cred == NULL)
        return NULL;
    memcpy(cred->secret_id, "AKID", 4);
    /* A fresh id that was never issued before in this process. */
    do {
        if (random_text(cred->secret_id + 4, CLW_SIM_TMP_ID_LEN - 4, alnum, sizeof(alnum) - 1) !=
            0) {
            free_cred(cred);
            return NULL;
        }
    } while (clw_sim_map_get(&creds->index, cred->secret_id, NULL));
    if (random_text(cred->secret_key, CLW_SIM_TMP_KEY_LEN, alnum, sizeof(alnum) - 1) != 0 ||
        random_text(cred->token, CLW_SIM_TMP_TOKEN_LEN, token_chars, sizeof(token_chars) - 1) !=
            0) {
        free_cred(cred);
        return NULL;
    }
    snprintf(cred->account, sizeof(cred->account), "%s", account);
    cred->expires = now + life_s;
    cred->serial = creds->next_serial++;
    cred->source = source;
    if (clw_sim_map_put(&creds->index, cred->secret_id, (uint32_t)creds->count) != 0) {
        free_cred(cred);
        return NULL;
    }
    creds->items[creds->count++] = cred;
    return cred;
}

const struct clw_sim_tmpcred *clw_sim_tmpcreds_find(const struct clw_sim_tmpcreds *creds,
                                                    const char *secret_id)
{
    uint32_t idx;

    if (!clw_sim_map_get(&creds->index, secret_id, &idx))
        return NULL;
    return creds->items[idx];
}

size_t clw_sim_tmpcreds_live(const struct clw_sim_tmpcreds *creds, int64_t now)
{
    size_t live = 0;

    for (size_t i = 0; i < creds->count; i++)
        live += creds->items[i]->expires > now;
    return live;
}

void clw_sim_tmpcreds_free(struct clw_sim_tmpcreds *creds)
{
    for (size_t i = 0; i < creds->count; i++)
        free_cred(creds->items[i]);
    free(creds->items);
    clw_sim_map_free(&creds->index);
    creds->items = NULL;
    creds->count = 0;
    creds->cap = 0;
}

void clw_sim_rfc3339(int64_t unix_s, char *out, size_t outsz)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
