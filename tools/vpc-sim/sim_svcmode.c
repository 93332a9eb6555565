/* vpc-sim: how the metadata service and STS behave: up, gone, or answering malformed documents. */
#include "sim_svcmode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int clw_sim_svcmode_parse(const char *text, struct clw_sim_svcmode *mode)
{
    char *end = NULL;
    long status;

    if (strcmp(text, "up") == 0) {
        *mode = (struct clw_sim_svcmode){CLW_SIM_SVC_UP, 0};
    } else if (strcmp(text, "drop") == 0) {
        *mode = (struct clw_sim_svcmode){CLW_SIM_SVC_DROP, 0};
    } else if (strcmp(text, "not-json") == 0) {
        *mode = (struct clw_sim_svcmode){CLW_SIM_SVC_NOT_JSON, 0};
    } else if (strcmp(text, "missing-fields") == 0) {
        *mode = (struct clw_sim_svcmode){CLW_SIM_SVC_MISSING_FIELDS, 0};
    } else if (strncmp(text, "http:", 5) == 0) {
        status = strtol(text + 5, &end, 10);
        if (end == text + 5 || *end != '\0' || status < 400 || status > 599)
            return -1;
        *mode = (struct clw_sim_svcmode){CLW_SIM_SVC_HTTP, (int)status};
    } else {
        return -1;
    }
    return 0;
}

void clw_sim_svcmode_format(const struct clw_sim_svcmode *mode, char *out, size_t outsz)
{
    switch (mode->kind) {
    case CLW_SIM_SVC_UP:
        snprintf(out, outsz, "up");
        break;
    case CLW_SIM_SVC_DROP:
        snprintf(out, outsz, "drop");
        break;
    case CLW_SIM_SVC_HTTP:
        snprintf(out, outsz, "http:%d", mode->status);
        break;
    case CLW_SIM_SVC_NOT_JSON:
        snprintf(out, outsz, "not-json");
        break;
    case CLW_SIM_SVC_MISSING_FIELDS:
        snprintf(out, outsz, "missing-fields");
        break;
    }
}
