/* placeholder until the command lands */
#include "cli.h"

const struct eg_option cmd_diff_options[] = {{0}};

int cmd_diff(const struct eg_command *cmd, int argc, char **argv) { return cmd_not_built(cmd, argc, argv); }
