/* libFuzzer target: any bytes through the manifest parser, strict and lenient. */
#include <stdint.h>
#include <stdlib.h>

#include "etcd-gitops/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct eg_desired_set *set;
        if (eg_desired_set_new(&set) < 0)
                return 0;
        struct eg_origin origin = {.path = "fuzz.yaml", .blob = "0123456789abcdef0123456789abcdef01234567"};
        struct eg_spec_options opt = {.strict = size > 0 && (data[0] & 1)};
        /* twice, so duplicate detection across "files" runs too */
        eg_spec_parse_buffer(set, &origin, (const char *)data, size, &opt);
        eg_spec_parse_buffer(set, &origin, (const char *)data, size, &opt);
        eg_desired_set_finish(set);
        for (size_t i = 0; i < set->n_diags; i++)
                free(eg_diag_format(&set->diags[i]));
        for (size_t i = 0; i < set->n_objects; i++) {
                const struct eg_object *o = set->objects[i];
                eg_desired_set_find(set, o->kind, o->meta.namespace, o->meta.name);
                eg_desired_set_object_has_errors(set, o->kind, o->meta.namespace, o->meta.name);
                if (o->kind == EG_KIND_CLUSTER) {
                        struct eg_semver v;
                        if (eg_semver_parse(o->cluster.version, &v) < 0)
                                abort(); /* a valid object always has a valid version */
                }
        }
        eg_desired_set_free(set);
        return 0;
}
