/* Minimal C host of the promptist C API: open a bundle, optimize one prompt, print the
 * candidates, free everything.
 *
 * Build (from the repository root, after `cargo build`):
 *   cc -std=c11 -Iinclude examples/c/optimize.c -Ltarget/debug -lpromptist -Wl,-rpath,$PWD/target/debug -o optimize
 * Run:
 *   ORT_DYLIB_PATH=/path/to/libonnxruntime.so.1.31.1 ./optimize BUNDLE_DIR "a cat sitting on a mat" */
#include <stdio.h>
#include <stdlib.h>

#include "promptist.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUNDLE_DIR PROMPT [MAX_NEW_TOKENS]\n", argv[0]);
        return 2;
    }
    promptist_error *err = NULL;
    promptist_engine *engine = NULL;
    promptist_optimize_result *result = NULL;
    int rc = 1;

    promptist_engine_options eo;
    promptist_engine_options_init(&eo, sizeof eo);
    eo.provider = PROMPTIST_PROVIDER_CPU;
    if (promptist_engine_open(argv[1], &eo, &engine, &err) != PROMPTIST_STATUS_OK) {
        fprintf(stderr, "open failed [%s]: %s\n", promptist_status_name(promptist_error_code(err)), promptist_error_message(err));
        goto done;
    }

    promptist_optimize_options oo;
    promptist_optimize_options_init(&oo, sizeof oo); /* reference demo: beam 8, length_penalty -1, 75 tokens */
    oo.num_return_sequences = 3;
    if (argc > 3) oo.max_new_tokens = (uint32_t)atoi(argv[3]);
    if (promptist_optimize(engine, argv[2], &oo, &result, &err) != PROMPTIST_STATUS_OK) {
        fprintf(stderr, "optimize failed [%s]: %s\n", promptist_status_name(promptist_error_code(err)), promptist_error_message(err));
        goto done;
    }

    printf("promptist %s, provider %s\n", promptist_version(), promptist_provider_name(promptist_optimize_result_provider(result)));
    if (promptist_optimize_result_random_weights(result))
        printf("NOTE: this bundle's policy has RANDOM weights; the rewrites below are meaningless.\n");
    for (size_t i = 0; i < promptist_optimize_result_count(result); i++)
        printf("%zu\t%.4f\t%s\n", i, promptist_optimize_result_score(result, i), promptist_optimize_result_text(result, i));
    rc = 0;

done:
    promptist_optimize_result_free(result);
    promptist_engine_free(engine);
    promptist_error_free(err);
    return rc;
}
