/* The Tencent Cloud credentials profile file (~/.tencentcloud/credentials, as the official SDKs
 * read it): INI sections of secret_id, secret_key and an optional token. Pure: parses text the
 * caller read. */
#ifndef CLW_PROFILE_H
#define CLW_PROFILE_H

#include <stddef.h>

/* One profile's credentials; every string owned (NULL when absent) and wiped by
 * clw_profile_free. */
struct clw_profile {
    char *secret_id;
    char *secret_key;
    char *token;
};

/* Largest profile file read. */
#define CLW_PROFILE_MAX_BYTES 65536

/* Looks for [section] in text (len bytes, any content): lines are "[name]", "key = value",
 * blank, or comments starting with '#' or ';' (after leading blanks); names, keys and values are
 * trimmed; a key repeated in a section keeps its last value; unknown keys are ignored; a section
 * may appear more than once (its keys add up). Returns 1 when the section exists (out filled:
 * the caller checks what it needs), 0 when it does not, -1 when the text is not such a file or
 * on allocation failure: err (may be NULL) then names the line, never a value. out must be
 * zeroed; on 0 and -1 it is left empty. */
int clw_profile_parse(const char *text, size_t len, const char *section, struct clw_profile *out,
                      char *err, size_t errlen);
void clw_profile_free(struct clw_profile *p);

#endif
