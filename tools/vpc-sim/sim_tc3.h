/* vpc-sim: the simulator's own, independent API 3.0 signature check (TC3-HMAC-SHA256). */
#ifndef CLW_SIM_TC3_H
#define CLW_SIM_TC3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLW_SIM_TC3_ALGORITHM "TC3-HMAC-SHA256"
#define CLW_SIM_TC3_HEX       65 /* hex SHA-256 and its terminator */

/* The parts of an Authorization header:
 * "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX". */
struct clw_sim_tc3_auth {
    char secret_id[128];
    char date[16];            /* YYYY-MM-DD */
    char service[32];         /* e.g. vpc */
    char signed_headers[256]; /* lowercase names joined with ';', e.g. content-type;host */
    char signature[CLW_SIM_TC3_HEX];
};

/* Parses an Authorization header. Returns 0, or -1 when it is not of the form above (other
 * algorithm, missing or empty part, a part too long, a signature that is not 64 hex digits, a
 * credential scope not ending in tc3_request, a date not YYYY-MM-DD). Blanks after
 * the commas are optional. */
int clw_sim_tc3_parse_auth(const char *header, struct clw_sim_tc3_auth *auth);

/* Lowercase hex of SHA-256(data) into out (CLW_SIM_TC3_HEX bytes). */
void clw_sim_tc3_sha256_hex(const void *data, size_t len, char *out);

/* The UTC date of a Unix time as YYYY-MM-DD (out: at least 16 bytes). */
void clw_sim_tc3_date(int64_t unix_s, char *out, size_t outsz);

/* Appends "name:value\n" to a canonical-headers buffer, value lowercased and trimmed of blanks.
 * Returns 0, or -1 when it does not fit (out keeps its terminator). */
int clw_sim_tc3_add_header(char *out, size_t outsz, const char *name, const char *value);

/* The canonical request: METHOD \n / \n (empty query) \n canonical headers \n signed headers
 * \n hex SHA-256 of the payload. canonical_headers already ends with a newline. Returns a
 * malloc'd string, NULL on allocation failure. */
char *clw_sim_tc3_canonical_request(const char *method, const char *canonical_headers,
                                    const char *signed_headers, const char *hashed_payload);

/* The string to sign: TC3-HMAC-SHA256 \n TIMESTAMP \n DATE/SERVICE/tc3_request \n
 * hex SHA-256 of the canonical request. Returns a malloc'd string, NULL on failure. */
char *clw_sim_tc3_string_to_sign(const char *timestamp, const char *date, const char *service,
                                 const char *canonical_request);

/* Hex HMAC-SHA256 signature of string_to_sign with the key derived from secret_key, date and
 * service (TC3 + key -> date -> service -> tc3_request). Returns 0, or -1 on failure. */
int clw_sim_tc3_sign(const char *secret_key, const char *date, const char *service,
                     const char *string_to_sign, char *out);

/* Constant-time comparison of two hex signatures. */
bool clw_sim_tc3_equal(const char *a, const char *b);

#endif
