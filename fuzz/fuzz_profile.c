/* Fuzz target: the credentials profile file and the temporary-credential documents (metadata
 * service and STS). */
#include "fuzz.h"

#include <string.h>

#include "clw/answer.h"
#include "clw/profile.h"

/* Input: byte 0 picks the section name looked up and the credential document kind; the rest
 * is the profile text and, as is, a credential document. */
static const char *const profile_sections[] = {"default", "prod", "a", "x.y-z_1"};

static void profile_check(const uint8_t *p, size_t n, const char *section)
{
    struct clw_profile prof;
    char err[128] = "";
    char *text = n > 0 ? malloc(n) : NULL; /* exact size: over-reads are caught */

    CLW_FUZZ_CHECK(n == 0 || text != NULL);
    if (n > 0)
        memcpy(text, p, n);
    memset(&prof, 0, sizeof(prof));
    int rc = clw_profile_parse(text, n, section, &prof, err, sizeof(err));
    CLW_FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 1) {
        /* Whatever was kept has no line end and no NUL inside. */
        const char *kept[] = {prof.secret_id, prof.secret_key, prof.token};
        for (size_t i = 0; i < 3; i++)
            CLW_FUZZ_CHECK(kept[i] == NULL || strpbrk(kept[i], "\n") == NULL);
    } else {
        CLW_FUZZ_CHECK(prof.secret_id == NULL && prof.secret_key == NULL && prof.token == NULL);
    }
    CLW_FUZZ_CHECK(rc != -1 || (err[0] != '\0' && strlen(err) < sizeof(err)));
    clw_profile_free(&prof);
    free(text);
}

static void tmp_creds_check(const uint8_t *p, size_t n, enum clw_tmp_creds_doc doc)
{
    struct clw_tmp_creds c;
    char why[160] = "";
    char *body = n > 0 ? malloc(n) : NULL;

    CLW_FUZZ_CHECK(n == 0 || body != NULL);
    if (n > 0)
        memcpy(body, p, n);
    memset(&c, 0, sizeof(c));
    int rc = clw_answer_parse_tmp_creds(doc, body, n, &c, why, sizeof(why));
    CLW_FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 0) {
        CLW_FUZZ_CHECK(c.secret_id != NULL && c.secret_id[0] != '\0');
        CLW_FUZZ_CHECK(c.secret_key != NULL && c.secret_key[0] != '\0');
        CLW_FUZZ_CHECK(c.token != NULL && c.token[0] != '\0');
        CLW_FUZZ_CHECK(c.expired_s > 0);
    } else {
        CLW_FUZZ_CHECK(c.secret_id == NULL && c.secret_key == NULL && c.token == NULL);
        CLW_FUZZ_CHECK(why[0] != '\0');
    }
    clw_tmp_creds_free(&c);
    free(body);
}

int clw_fuzz_profile(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    profile_check(data + 1, size - 1, profile_sections[data[0] % 4]);
    tmp_creds_check(data + 1, size - 1, (data[0] & 4) ? CLW_TMP_CREDS_STS : CLW_TMP_CREDS_METADATA);
    return 0;
}

#ifndef CLW_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return clw_fuzz_profile(data, size);
}
#endif
