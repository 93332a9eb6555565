/* Classification of an API answer: the one table that says success, permanent, transient,
 * re-sign or worker fault. */
#ifndef CLW_CLASSIFY_H
#define CLW_CLASSIFY_H

#include "clw/answer.h"

enum clw_class {
    CLW_CLASS_SUCCESS = 0,
    CLW_CLASS_PERMANENT,    /* api_error outcome */
    CLW_CLASS_TRANSIENT,    /* back off and retry */
    CLW_CLASS_RESIGN,       /* retry at once with a fresh Timestamp and Nonce (4200, 4500) */
    CLW_CLASS_WORKER_FAULT, /* our own setup is wrong: publish nothing, pause, probe */
};

const char *clw_class_name(enum clw_class c); /* "success", "permanent", ... */

/* Classifies ans. *why (may be NULL) gets a static short reason, e.g. "code 4400",
 * "http 503", "timeout", "codeDesc ActionLocked". */
enum clw_class clw_classify(const struct clw_answer *ans, const char **why);

/* The outcome's codeDesc when the last attempt got no API answer: "Transport.Timeout",
 * "Transport.Connect", "Transport.TLS" or "Transport.HttpStatus"; NULL when the answer has a
 * decodable API body. */
const char *clw_classify_transport_desc(const struct clw_answer *ans);

#endif
