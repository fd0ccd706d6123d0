/* Negative control for tests/c/run.sh: loses its promptist objects (engine, result, error) on
 * purpose. valgrind with tests/c/valgrind.supp must report them as definitely lost and fail, which
 * shows the suppressions cannot hide leaks of promptist's own objects.
 * Usage: leak_control GOOD_BUNDLE */
#include <stdio.h>

#include "promptist.h"

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    promptist_engine *volatile engine = NULL;
    promptist_optimize_result *volatile result = NULL;
    promptist_error *volatile error = NULL;
    promptist_engine *e = NULL;
    promptist_optimize_result *r = NULL;
    promptist_error *err = NULL;
    if (promptist_engine_open(argv[1], NULL, &e, NULL) != PROMPTIST_STATUS_OK) return 3;
    promptist_optimize_options oo;
    promptist_optimize_options_init(&oo, sizeof oo);
    oo.max_new_tokens = 4;
    oo.num_beams = 2;
    if (promptist_optimize(e, "a cat", &oo, &r, NULL) != PROMPTIST_STATUS_OK) return 4;
    promptist_optimize(e, "", &oo, &r, &err); /* overwrites r: the first result is lost */
    engine = e;
    result = r;
    error = err;
    /* Drop every pointer without freeing. */
    engine = NULL;
    result = NULL;
    error = NULL;
    e = NULL;
    err = NULL;
    (void)engine;
    (void)result;
    (void)error;
    fprintf(stderr, "leak_control: leaked an engine, a result and an error on purpose\n");
    return 0;
}
