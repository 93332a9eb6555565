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

/* Classifies ans (v2 or v3 by ans->api_version; a v3 answer uses the v3 string-code table:
 * AuthFailure and AuthFailure.* worker fault except AuthFailure.SignatureExpire re-sign,
 * RequestLimitExceeded*, InternalError*, ServiceUnavailable and ResourceInUse transient,
 * InvalidAction, NoSuchVersion, UnsupportedProtocol, UnauthorizedOperation* worker fault,
 * everything else permanent; a v3 Error without a Code is a body without code). *why (may be
 * NULL) gets a static short reason, e.g. "code 4400", "http 503", "timeout", "codeDesc
 * ActionLocked", "v3 RequestLimitExceeded*". */
enum clw_class clw_classify(const struct clw_answer *ans, const char **why);

/* The outcome's codeDesc when the last attempt got no API answer: "Transport.Timeout",
 * "Transport.Connect", "Transport.TLS" or "Transport.HttpStatus"; NULL when the answer has a
 * decodable API body. */
const char *clw_classify_transport_desc(const struct clw_answer *ans);

/* 1 when the answer says an instance is already linked to a VPC: v2 codeDesc
 * InstanceAlreadyLinked, v3 UnsupportedOperation.ClassicInstanceIdAlreadyExists. */
int clw_classify_already_linked(const struct clw_answer *ans);
/* 1 when the answer says an instance (or its link) was not found: v2 InvalidInstance.NotFound,
 * v3 ResourceNotFound / InvalidParameterValue.* naming an instance are NOT included — only
 * ResourceNotFound. */
int clw_classify_not_found(const struct clw_answer *ans);
/* 1 when the API refused the credentials themselves (v2 4100, 4104, 4105; v3 AuthFailure.*
 * but AuthFailure.SignatureExpire): a fresh signature with newer credentials may pass. */
int clw_classify_credentials_refused(const struct clw_answer *ans);
/* 1 when the answer is a throttling signal for the rate limiter: v2 code 4400, HTTP 429, v3
 * RequestLimitExceeded*. */
int clw_classify_throttled(const struct clw_answer *ans);
/* 1 when the answer says a resource is busy with another operation (v2 codeDesc ActionLocked,
 * v3 ResourceInUse): transient, and about that resource, not the service — a lock is not an
 * outage (the circuit breaker never counts it). */
int clw_classify_resource_busy(const struct clw_answer *ans);

#endif
