/* kube_events: each decision told to Kubernetes as a core/v1 Event, where `kubectl describe` shows it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "kube_objects.h"
#include "kube_runtime.h"

#define REPORTER "etcd-gitops"
/* what events.k8s.io allows a note and a reporting instance; core/v1 takes more, but a message cut
 * here reads the same through either API */
#define MESSAGE_MAX 1024
#define INSTANCE_MAX 128
#define TRUNCATED "…(truncated)"

/* "replace-dead" -> "ReplaceDead": how Kubernetes spells reasons. */
static char *camel_case(const char *decision) {
        char *out = malloc(strlen(decision) + 1), *o = out;
        bool up = true;
        if (!out)
                return NULL;
        for (const char *p = decision; *p; p++) {
                if (*p == '-') {
                        up = true;
                        continue;
                }
                *o++ = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
                up = false;
        }
        *o = 0;
        return out;
}

/* message, and the error after it when there is one, cut at a character boundary to fit. */
static char *event_message(const char *message, const char *error) {
        char *s = error && *error ? eg_strdup_printf("%s: %s", message, error) : strdup(message);
        size_t n = s ? strlen(s) : 0;
        if (n <= MESSAGE_MAX)
                return s;
        size_t keep = MESSAGE_MAX - strlen(TRUNCATED);
        while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
                keep--;
        memcpy(s + keep, TRUNCATED, sizeof(TRUNCATED));
        return s;
}

/* The member's pod, or the client service for the cluster as a whole (it always exists, and
 * outlives every pod) and for a member no pod can be named after (etcd's name for one that never
 * started). With its uid when the object is there: `kubectl describe` matches on it. A pod already
 * gone (a dead member replaced) is still named, for `kubectl get events`. */
static json_t *involved_object(struct kube_runtime *kr, const struct eg_runtime_event *ev) {
        bool pod = ev->member && kube_check_names(ev->namespace, ev->name, ev->member, NULL) >= 0;
        const char *kind = pod ? "Pod" : "Service";
        _cleanup_free_ char *name = pod ? strdup(ev->member) : eg_strdup_printf("%s-client", ev->name);
        _cleanup_free_ char *path = name ? eg_strdup_printf("/api/v1/namespaces/%s/%s/%s", ev->namespace,
                                                            pod ? "pods" : "services", name)
                                         : NULL;
        json_t *obj = NULL;
        if (!path)
                return NULL;
        /* best effort like the event itself: without the uid it is still an event */
        (void)eg_kube_get_once(kr->client, path, &obj, NULL);
        json_t *ref = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "apiVersion", "v1", "kind", kind, "name", name,
                                "namespace", ev->namespace, "uid", jstr(json_object_get(obj, "metadata"), "uid"));
        json_decref(obj);
        return ref;
}

int kube_record_event(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        char host[INSTANCE_MAX + 1] = "", now[32];
        int r;
        if ((r = kube_check_names(ev->namespace, ev->name, NULL, err)) < 0)
                return r;
        /* diff and dry runs change nothing, events included */
        if (kr->read_only)
                return 0;
        if (gethostname(host, INSTANCE_MAX) < 0 || !*host)
                snprintf(host, sizeof(host), "unknown");
        host[INSTANCE_MAX] = 0;
        eg_format_rfc3339_ms(eg_now_realtime_ms(), now);
        _cleanup_free_ char *reason = camel_case(ev->decision ? ev->decision : "unknown");
        _cleanup_free_ char *message = event_message(ev->message ? ev->message : "", ev->error);
        _cleanup_free_ char *coll = eg_strdup_printf("/api/v1/namespaces/%s/events", ev->namespace);
        json_t *involved = involved_object(kr, ev);
        if (!reason || !message || !coll || !involved) {
                json_decref(involved);
                return -ENOMEM;
        }
        /* the name as client-go's recorder makes it: <object>.<unique suffix> */
        json_t *obj = json_pack("{s:s, s:s, s:{s:s+, s:s}, s:o, s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:i}",
                                "apiVersion", "v1", "kind", "Event", "metadata", "generateName", jstr(involved, "name"),
                                ".", "namespace", ev->namespace, "involvedObject", involved, "reason", reason,
                                "message", message, "type", ev->warning ? "Warning" : "Normal", "source", "component",
                                REPORTER, "host", host, "reportingComponent", REPORTER, "reportingInstance", host,
                                "firstTimestamp", now, "lastTimestamp", now, "count", 1);
        if (!obj)
                return -ENOMEM;
        r = eg_kube_create(kr->client, coll, obj, NULL, err);
        json_decref(obj);
        return r;
}
