/* Fuzz entry points, shared by the libFuzzer targets and the regression replay unit test. */
#ifndef CLW_FUZZ_H
#define CLW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Each runs one input through its parsers and checks invariants that must hold whatever the
 * input; a broken invariant aborts, which libFuzzer and cmocka both report. Each returns 0. */
int clw_fuzz_request(const uint8_t *data, size_t size);
int clw_fuzz_answer(const uint8_t *data, size_t size);
int clw_fuzz_config(const uint8_t *data, size_t size);
int clw_fuzz_sign(const uint8_t *data, size_t size);
int clw_fuzz_sim_params(const uint8_t *data, size_t size);
int clw_fuzz_profile(const uint8_t *data, size_t size);

/* libFuzzer's entry point: each target file defines it unless CLW_FUZZ_NO_ENTRY is set (the
 * regression test includes every target file and calls the clw_fuzz_* functions instead). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLW_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
