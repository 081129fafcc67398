/* S3 credentials (AWS credentials and config files, the environment) and object URLs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "internal.h"

void eg_s3_credentials_done(struct eg_s3_credentials *c) {
        free(c->access_key_id);
        if (c->secret_access_key)
                explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
        free(c->secret_access_key);
        free(c->session_token);
        free(c->region);
        *c = (struct eg_s3_credentials){0};
}

static char *trim(char *s, char *end) {
        while (s < end && isspace((unsigned char)*s))
                s++;
        while (end > s && isspace((unsigned char)end[-1]))
                end--;
        *end = 0;
        return s;
}

/* profile's keys in an AWS INI file (credentials or config), whichever are there */
static int parse_profile(const char *text, const char *profile, struct eg_s3_credentials *ret) {
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        struct eg_s3_credentials c = {0};
        bool in = false;
        int r = 0;
        for (char *line = copy; line && *line;) {
                char *nl = strchr(line, '\n'), *next = nl ? nl + 1 : NULL;
                char *s = trim(line, nl ? nl : line + strlen(line));
                line = next;
                if (*s == 0 || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        char *close = strchr(s, ']');
                        if (!close)
                                continue;
                        char *name = trim(s + 1, close);
                        if (strncmp(name, "profile ", 8) == 0)
                                name = trim(name + 8, name + strlen(name));
                        in = strcmp(name, profile) == 0;
                        continue;
                }
                char *eq = strchr(s, '=');
                if (!in || !eq)
                        continue;
                char *key = trim(s, eq), *val = trim(eq + 1, eq + 1 + strlen(eq + 1));
                char **dst = strcmp(key, "aws_access_key_id") == 0       ? &c.access_key_id
                             : strcmp(key, "aws_secret_access_key") == 0 ? &c.secret_access_key
                             : strcmp(key, "aws_session_token") == 0     ? &c.session_token
                             : strcmp(key, "region") == 0                ? &c.region
                                                                         : NULL;
                if (!dst)
                        continue;
                free(*dst);
                *dst = strdup(val);
                if (!*dst) {
                        r = -ENOMEM;
                        break;
                }
        }
        explicit_bzero(copy, strlen(text));
        if (r < 0) {
                eg_s3_credentials_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int eg_s3_credentials_parse(const char *text, const char *profile, struct eg_s3_credentials *ret) {
        struct eg_s3_credentials c = {0};
        int r = parse_profile(text, profile, &c);
        if (r == 0 && (!c.access_key_id || !c.secret_access_key || !*c.access_key_id || !*c.secret_access_key))
                r = -ENOENT;
        if (r < 0) {
                eg_s3_credentials_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

static int dup_env(const char *name, char **ret) {
        const char *v = getenv(name);
        *ret = NULL;
        if (!v || !*v)
                return 0;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int load_file(const char *file, struct eg_s3_credentials *c, struct eg_error *err) {
        _cleanup_free_ char *text = NULL;
        int r = eg_read_file(file, 1 << 20, &text, NULL);
        if (r < 0) {
                eg_error_set(err, "cannot read AWS credentials file '%s': %s", file, strerror(-r));
                return r;
        }
        const char *profile = getenv("AWS_PROFILE");
        if (!profile || !*profile)
                profile = "default";
        r = eg_s3_credentials_parse(text, profile, c);
        explicit_bzero(text, strlen(text));
        if (r == -ENOENT)
                eg_error_set(
                        err,
                        "AWS credentials file '%s' has no aws_access_key_id and aws_secret_access_key for profile '%s'",
                        file, profile);
        if (r < 0 || c->region)
                return r;
        /* as the AWS tools do, the region may be in the config file beside it (an awsSecret
         * holds both, as upstream's did) */
        const char *slash = strrchr(file, '/');
        _cleanup_free_ char *config = slash ? eg_strdup_printf("%.*s/config", (int)(slash - file), file)
                                            : strdup("config");
        _cleanup_free_ char *ctext = NULL;
        struct eg_s3_credentials cc = {0};
        if (config && eg_read_file(config, 1 << 20, &ctext, NULL) >= 0 && parse_profile(ctext, profile, &cc) >= 0) {
                c->region = TAKE_PTR(cc.region);
                eg_s3_credentials_done(&cc);
        }
        return 0;
}

int eg_s3_credentials_load(const char *file, struct eg_s3_credentials *ret, struct eg_error *err) {
        struct eg_s3_credentials c = {0};
        int r;
        if (file)
                r = load_file(file, &c, err);
        else if (getenv("AWS_ACCESS_KEY_ID") && *getenv("AWS_ACCESS_KEY_ID")) {
                r = dup_env("AWS_ACCESS_KEY_ID", &c.access_key_id);
                if (r >= 0)
                        r = dup_env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
                if (r >= 0)
                        r = dup_env("AWS_SESSION_TOKEN", &c.session_token);
                if (r >= 0 && !c.secret_access_key) {
                        eg_error_set(err, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
                        r = -ENOENT;
                }
        } else {
                const char *home = getenv("HOME");
                _cleanup_free_ char *path = eg_strdup_printf("%s/.aws/credentials", home ? home : "");
                r = path ? load_file(path, &c, err) : -ENOMEM;
                if (r == -ENOENT && !err->message)
                        eg_error_set(
                                err,
                                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write ~/.aws/credentials");
        }
        if (r >= 0 && !c.region) {
                r = dup_env("AWS_REGION", &c.region);
                if (r >= 0 && !c.region)
                        r = dup_env("AWS_DEFAULT_REGION", &c.region);
                if (r >= 0 && !c.region && !(c.region = strdup("us-east-1")))
                        r = -ENOMEM;
        }
        if (r < 0) {
                eg_s3_credentials_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

/* ---- URLs ---- */

int eg_s3_parse_path(const char *path, char **ret_bucket, char **ret_key) {
        if (strncmp(path, "s3://", 5) == 0)
                path += 5;
        const char *slash = strchr(path, '/');
        if (!slash || slash == path || slash[1] == 0)
                return -EINVAL;
        char *b = strndup(path, (size_t)(slash - path)), *k = strdup(slash + 1);
        if (!b || !k) {
                free(b);
                free(k);
                return -ENOMEM;
        }
        *ret_bucket = b;
        *ret_key = k;
        return 0;
}

int s3_append_escaped(struct eg_buf *b, const char *s, bool keep_slash) {
        int r = 0;
        for (; *s && r >= 0; s++) {
                unsigned char c = (unsigned char)*s;
                if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
                        r = eg_buf_append(b, s, 1);
                else
                        r = eg_buf_printf(b, "%%%02X", c);
        }
        return r;
}

char *eg_s3_url(const char *endpoint, const char *region, bool path_style, const char *bucket, const char *key,
                const char *query) {
        _cleanup_free_ char *def = NULL;
        if (!endpoint || !*endpoint)
                endpoint = def = eg_strdup_printf("https://s3.%s.amazonaws.com", region ? region : "us-east-1");
        if (!endpoint)
                return NULL;
        const char *scheme = "https://", *host = endpoint, *sep = strstr(endpoint, "://");
        _cleanup_free_ char *scheme_buf = NULL;
        if (sep) {
                scheme = scheme_buf = strndup(endpoint, (size_t)(sep - endpoint) + 3);
                host = sep + 3;
                if (!scheme_buf)
                        return NULL;
        }
        size_t hl = strlen(host);
        while (hl > 0 && host[hl - 1] == '/')
                hl--;
        struct eg_buf b;
        eg_buf_init(&b, 0);
        int r = path_style ? eg_buf_printf(&b, "%s%.*s/", scheme, (int)hl, host)
                           : eg_buf_printf(&b, "%s%s.%.*s/", scheme, bucket, (int)hl, host);
        if (r >= 0 && path_style)
                r = s3_append_escaped(&b, bucket, false);
        if (r >= 0 && path_style && key)
                r = eg_buf_puts(&b, "/");
        if (r >= 0 && key)
                r = s3_append_escaped(&b, key, true);
        if (r >= 0 && query)
                r = eg_buf_printf(&b, "?%s", query);
        if (r < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}
