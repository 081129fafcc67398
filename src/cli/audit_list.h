/* What `audit` hands its listing: the filters and how to print. */
#pragma once

#include "cli.h"
#include "etcd-gitops/audit.h"
#include "output.h"

struct audit_args {
        struct eg_audit_filter filter;
        const char *cluster; /* as typed: resolved against the log's clusters */
        int64_t since_ms;    /* realtime; 0: from the start */
        const char *outcome, *decision;
        bool follow;
        enum eg_out_format format;
        bool filtered; /* any listing option given: meaningless with verify */
};

/* Lists the records a selects, then with a->follow those appended, until SIGINT or SIGTERM;
 * returns the exit code. */
int audit_list(const struct audit_args *a);
