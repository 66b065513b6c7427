#include <stdio.h>
#include <routerm.h>
int main(int argc, char **argv) {  /* ./example BUNDLE_DIR */
    const char *prompt = "How do I boil an egg?", *response = "Simmer it for 9 minutes, then cool it in cold water.";
    routerm_engine *rm = NULL; float reward; int32_t domain;
    int ok = routerm_engine_create(argc > 1 ? argv[1] : NULL, NULL, &rm) == ROUTERM_OK &&
             routerm_score(rm, 1, &prompt, &response, &reward, &domain) == ROUTERM_OK;
    if (ok) printf("reward %.4f, domain %s\n", reward, domain >= 0 ? routerm_domain_name(rm, domain) : "(none)");
    else fprintf(stderr, "routerm: %s\n", routerm_last_error());
    routerm_engine_destroy(rm);
    return ok ? 0 : 1;
}
