/* .sourceignore: gitignore patterns parsed line by line and matched one path component
 * at a time with fnmatch, so that '*' never crosses a '/' and "**" spans folders. */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/ignore.h"
#include "etcd-gitops/util.h"
#include "spec-internal.h"

struct pattern {
        char *base; /* folder of its .sourceignore: "" or "a/b" */
        size_t base_len;
        char *glob; /* components, each NUL-terminated, "**" as a component of its own */
        size_t glob_len;
        bool negate, dir_only;
        bool anchored; /* held against the path below base; else against the last name only */
};

struct eg_ignore {
        struct pattern *patterns;
        size_t n, alloc;
};

int eg_ignore_new(struct eg_ignore **ret) {
        struct eg_ignore *ig = calloc(1, sizeof(*ig));
        if (!ig)
                return -ENOMEM;
        *ret = ig;
        return 0;
}

static void pattern_done(struct pattern *p) {
        free(p->base);
        free(p->glob);
        *p = (struct pattern){0};
}

void eg_ignore_free(struct eg_ignore *ig) {
        if (!ig)
                return;
        for (size_t i = 0; i < ig->n; i++)
                pattern_done(&ig->patterns[i]);
        free(ig->patterns);
        free(ig);
}

static const char *next_component(const char *c) { return c + strlen(c) + 1; }

/* Why fnmatch would not read the component as meant, or NULL. */
static const char *bad_component(const char *c) {
        for (const char *p = c; *p; p++) {
                if (*p == '\\') {
                        if (!*++p)
                                return "it ends in a backslash that escapes nothing";
                        continue;
                }
                if (*p != '[')
                        continue;
                const char *q = p + 1;
                q += *q == '!' || *q == '^';
                q += *q == ']'; /* a ']' first is one of the characters */
                while (*q && *q != ']') {
                        const char *class_end = q[0] == '[' && q[1] == ':' ? strstr(q + 2, ":]") : NULL;
                        q = class_end ? class_end + 2 : q + 1;
                }
                if (!*q)
                        return "a '[' has no ']' in the same folder name";
                p = q;
        }
        return NULL;
}

/* Splits glob (len bytes, no leading or trailing '/') into NUL-terminated components in
 * p->glob: runs of "**" become one, and an anchored trailing "**" becomes "*" and "**",
 * because a trailing "**" stands for what the folder before it holds, not the folder. */
static int split_glob(const char *glob, size_t len, struct pattern *p, const char **ret_why) {
        _cleanup_free_ char *out = malloc(len + 6);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        const char *last = NULL;
        for (const char *c = glob, *end = glob + len; c <= end;) {
                const char *slash = memchr(c, '/', (size_t)(end - c));
                size_t cl = slash ? (size_t)(slash - c) : (size_t)(end - c);
                if (cl == 0) {
                        *ret_why = "it has an empty folder name (\"//\")";
                        return -EINVAL;
                }
                bool star2 = cl == 2 && c[0] == '*' && c[1] == '*';
                if (!(star2 && last && strcmp(last, "**") == 0)) {
                        memcpy(out + n, c, cl);
                        out[n + cl] = 0;
                        last = out + n;
                        n += cl + 1;
                        if ((*ret_why = bad_component(last)))
                                return -EINVAL;
                }
                c += cl + 1;
        }
        if (p->anchored && strcmp(last, "**") == 0) {
                memcpy(out + (last - out), "*\0**", 5);
                n += 2;
        }
        p->glob = TAKE_PTR(out);
        p->glob_len = n;
        return 0;
}

/* 1 with *ret filled, 0 for a blank line or a comment, -EINVAL with *ret_why, -ENOMEM. */
static int parse_line(const char *line, size_t len, struct pattern *ret, const char **ret_why) {
        if (len > 0 && line[len - 1] == '\r')
                len--;
        if (memchr(line, 0, len)) {
                *ret_why = "it holds a NUL byte";
                return -EINVAL;
        }
        if (len > EG_IGNORE_MAX_LINE) {
                *ret_why = "it is too long";
                return -EINVAL;
        }
        while (len > 0 && line[len - 1] == ' ' && !(len > 1 && line[len - 2] == '\\'))
                len--;
        if (len == 0 || line[0] == '#')
                return 0;
        struct pattern p = {0};
        if (line[0] == '!') {
                p.negate = true;
                line++, len--;
        }
        if (len > 0 && line[len - 1] == '/') {
                p.dir_only = true;
                len--;
        }
        if (len > 0 && line[0] == '/') {
                p.anchored = true;
                line++, len--;
        }
        if (len == 0) {
                *ret_why = "it names no file";
                return -EINVAL;
        }
        p.anchored = p.anchored || memchr(line, '/', len);
        int r = split_glob(line, len, &p, ret_why);
        if (r < 0)
                return r;
        *ret = p;
        return 1;
}

static int push_pattern(struct eg_ignore *ig, struct pattern *p, const char *dir) {
        if (ig->n == EG_IGNORE_MAX_PATTERNS)
                return -E2BIG;
        if (ig->n == ig->alloc) {
                size_t na = ig->alloc ? ig->alloc * 2 : 16;
                struct pattern *np = realloc(ig->patterns, na * sizeof(*np));
                if (!np)
                        return -ENOMEM;
                ig->patterns = np;
                ig->alloc = na;
        }
        p->base = strdup(dir);
        if (!p->base)
                return -ENOMEM;
        p->base_len = strlen(dir);
        ig->patterns[ig->n++] = *p;
        *p = (struct pattern){0};
        return 0;
}

/* Every line of the file: patterns into ig, bad lines as warnings into c. */
static int add_lines(struct eg_ignore *ig, struct eg_dctx *c, const char *dir, const char *data, size_t len) {
        unsigned line_no = 0;
        int r = 0;
        for (const char *p = data, *end = data + len; p < end && r >= 0; line_no++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                struct pattern pat = {0};
                const char *why = NULL;
                r = parse_line(p, n, &pat, &why);
                if (r == -EINVAL) {
                        eg_dctx_report(c, EG_SEVERITY_WARNING, line_no + 1, 1, NULL, "not a pattern, %s; line ignored",
                                       why);
                        r = 0;
                } else if (r > 0) {
                        r = push_pattern(ig, &pat, dir);
                        pattern_done(&pat);
                }
                p = nl ? nl + 1 : end;
        }
        return r;
}

int eg_ignore_add(struct eg_ignore *ig, struct eg_desired_set *set, const char *dir, const char *display,
                  const char *data, size_t len) {
        if (len > EG_IGNORE_MAX_BYTES)
                return eg_desired_set_add_file_error(set, display, "file is too large (%zu bytes; the limit is %zu)",
                                                     len, EG_IGNORE_MAX_BYTES);
        int r = eg_set_hash_file(set, display, data, len);
        if (r < 0)
                return r;
        struct eg_dctx c = {.path = display};
        size_t first = ig->n;
        r = add_lines(ig, &c, dir, data, len);
        if (r == -E2BIG) {
                while (ig->n > first)
                        pattern_done(&ig->patterns[--ig->n]);
                r = eg_desired_set_add_file_error(set, display,
                                                  "more than %d patterns in the source's " EG_IGNORE_FILE
                                                  " files; none of this file's are used",
                                                  EG_IGNORE_MAX_PATTERNS);
        }
        if (r >= 0)
                r = c.oom ? c.oom : eg_set_take_diags(set, &c);
        eg_dctx_done(&c);
        return r;
}

/* Glob components against path components, both NUL-separated up to their end: "**"
 * takes any number of path components. Greedy with one point to come back to, as for '*'
 * in a string, so the cost stays linear in both. */
static bool match_components(const char *g, const char *g_end, const char *s, const char *s_end) {
        const char *star = NULL, *mark = NULL;
        while (s < s_end) {
                if (g < g_end && strcmp(g, "**") == 0) {
                        star = g = next_component(g);
                        mark = s;
                } else if (g < g_end && fnmatch(g, s, FNM_PATHNAME) == 0) {
                        g = next_component(g);
                        s = next_component(s);
                } else if (star) {
                        g = star;
                        s = mark = next_component(mark);
                } else
                        return false;
        }
        while (g < g_end && strcmp(g, "**") == 0)
                g = next_component(g);
        return g >= g_end;
}

static bool pattern_matches(const struct pattern *p, const char *path, const char *components, size_t len,
                            const char *name) {
        if (p->base_len > 0 && (strncmp(path, p->base, p->base_len) != 0 || path[p->base_len] != '/'))
                return false;
        if (!p->anchored)
                return fnmatch(p->glob, name, FNM_PATHNAME) == 0;
        size_t skip = p->base_len ? p->base_len + 1 : 0;
        return match_components(p->glob, p->glob + p->glob_len, components + skip, components + len + 1);
}

int eg_ignore_check(const struct eg_ignore *ig, const char *path, bool is_dir) {
        if (!ig || ig->n == 0)
                return 0;
        size_t len = strlen(path);
        _cleanup_free_ char *components = strdup(path);
        if (!components)
                return -ENOMEM;
        for (char *c = components; (c = strchr(c, '/'));)
                *c++ = 0;
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        for (size_t i = ig->n; i-- > 0;) {
                const struct pattern *p = &ig->patterns[i];
                if ((!p->dir_only || is_dir) && pattern_matches(p, path, components, len, name))
                        return !p->negate;
        }
        return 0;
}
