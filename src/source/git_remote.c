/* The git source's remote: URLs with their credentials redacted, libgit2's errors, and the
 * credentials and host key checks of a connection (known_hosts as OpenSSH reads it). */
#include <errno.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "git.h"

#define MAX_KNOWN_HOSTS ((size_t)16 << 20)

static char *replace_all(const char *s, const char *needle, const char *with) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        size_t n = needle ? strlen(needle) : 0;
        const char *p = s;
        int r = 0;
        for (const char *q; n > 0 && r >= 0 && (q = strstr(p, needle)); p = q + n) {
                r = eg_buf_append(&b, p, (size_t)(q - p));
                if (r >= 0)
                        r = eg_buf_puts(&b, with);
        }
        if (r >= 0)
                r = eg_buf_puts(&b, p);
        if (r < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

/* Splits scheme://[userinfo@]host[:port]/path and user@host:path far enough to redact
 * and to know which known_hosts name to look for. */
int gsrc_parse_url(struct git_source *s) {
        const char *u = s->url, *sep = strstr(u, "://");
        const char *auth = sep ? sep + 3 : u;
        const char *end = sep ? auth + strcspn(auth, "/") : strchr(u, ':');
        if (!end)
                end = u + strlen(u);
        const char *at = NULL;
        for (const char *p = auth; p < end; p++)
                if (*p == '@')
                        at = p;
        const char *host = at ? at + 1 : auth;
        s->port = eg_str_has_prefix(u, "ssh://") || !sep ? 22 : 0;
        const char *hend = end;
        if (*host == '[') {
                const char *close = memchr(host, ']', (size_t)(end - host));
                if (close) {
                        hend = close;
                        host++;
                        if (close + 1 < end && close[1] == ':')
                                s->port = (unsigned)strtoul(close + 2, NULL, 10);
                }
        } else if (sep) {
                const char *colon = memchr(host, ':', (size_t)(end - host));
                if (colon) {
                        hend = colon;
                        s->port = (unsigned)strtoul(colon + 1, NULL, 10);
                }
        }
        s->host = strndup(host, (size_t)(hend - host));
        if (sep && at) {
                s->userinfo = strndup(auth, (size_t)(at - auth));
                s->display_url = eg_strdup_printf("%.*s***%s", (int)(auth - u), u, at);
        } else
                s->display_url = strdup(u);
        return s->host && s->display_url && (!sep || !at || s->userinfo) ? 0 : -ENOMEM;
}

/* A message from libgit2 or a callback with the URL's userinfo and the token removed. */
static char *scrub(const struct git_source *s, const char *msg) {
        char *a = replace_all(msg, s->url, s->display_url);
        char *b = a && s->userinfo && s->userinfo[0] ? replace_all(a, s->userinfo, "***") : a;
        if (b != a)
                free(a);
        /* the password alone, as a message might show it apart from the user name */
        const char *password = s->userinfo ? strchr(s->userinfo, ':') : NULL;
        char *c = b && password && strlen(password + 1) >= 4 ? replace_all(b, password + 1, "***") : b;
        if (c != b)
                free(b);
        char *d = c && s->token && s->token[0] ? replace_all(c, s->token, "***") : c;
        if (d != c)
                free(c);
        return d;
}

/* Sets err to "<what> <url>: <why>" from the failed libgit2 call's result r. */
int gsrc_fail(struct git_source *s, struct eg_error *err, int r, const char *what) {
        const git_error *e = git_error_last();
        const char *why = r == GIT_EUSER && s->cb_error ? s->cb_error : e && e->message ? e->message : "unknown error";
        _cleanup_free_ char *clean = scrub(s, why);
        eg_error_set(err, "%s %s: %s", what, s->display_url, clean ? clean : "(no memory for the message)");
        free(s->cb_error);
        s->cb_error = NULL;
        return r == GIT_ENOTFOUND ? -ENOENT : r == GIT_EAUTH || r == GIT_ECERTIFICATE ? -EACCES : -EIO;
}

void gsrc_cb_fail(struct git_source *s, char *msg) {
        free(s->cb_error);
        s->cb_error = msg;
}

/* ---- known_hosts ---- */

/* The decoded bytes (malloc'd) and their number; 0 for what is not base64. */
static size_t b64_decode(const char *in, size_t len, unsigned char **ret) {
        unsigned char *out = malloc(len / 4 * 3 + 1);
        size_t n = 0;
        if (!out || eg_base64_decode_strict(in, len, out, &n) < 0) {
                free(out);
                return 0;
        }
        *ret = out;
        return n;
}

/* "|1|salt|hash": HMAC-SHA1 of the name keyed with the salt. */
static bool hashed_host_matches(const char *pattern, const char *name) {
        const char *salt = pattern + 3, *bar = strchr(salt, '|');
        if (!bar)
                return false;
        unsigned char *k = NULL, *h = NULL;
        size_t kn = b64_decode(salt, (size_t)(bar - salt), &k), hn = b64_decode(bar + 1, strlen(bar + 1), &h);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        bool ok = kn > 0 && hn == 20 &&
                  HMAC(EVP_sha1(), k, (int)kn, (const unsigned char *)name, strlen(name), mac, &mac_len) &&
                  mac_len == 20 && memcmp(mac, h, 20) == 0;
        free(k);
        free(h);
        return ok;
}

/* ssh's rules: comma-separated patterns with * and ?, "!pattern" excludes. */
static bool hosts_match(char *hosts, const char *name) {
        if (eg_str_has_prefix(hosts, "|1|"))
                return hashed_host_matches(hosts, name);
        bool match = false;
        for (char *p; (p = strsep(&hosts, ","));) {
                if (!p[0])
                        continue;
                bool negate = p[0] == '!';
                if (fnmatch(p + negate, name, FNM_CASEFOLD) == 0) {
                        if (negate)
                                return false;
                        match = true;
                }
        }
        return match;
}

/* 1 when the key is listed for the host, 0 when the host is not listed, -EKEYREJECTED
 * when it is listed with other keys only or the key is revoked, -errno when unreadable. */
static int known_hosts_check(const char *path, const char *host, unsigned port, const unsigned char *key,
                             size_t key_len) {
        _cleanup_free_ char *data = NULL;
        int r = eg_read_file(path, MAX_KNOWN_HOSTS, &data, NULL);
        if (r < 0)
                return r;
        _cleanup_free_ char *name = port == 22 || port == 0 ? strdup(host) : eg_strdup_printf("[%s]:%u", host, port);
        if (!name)
                return -ENOMEM;
        bool listed = false, found = false;
        char *rest = data;
        for (char *line; (line = strsep(&rest, "\n"));) {
                char *f[4] = {0};
                size_t n = 0;
                for (char *w; n < 4 && (w = strsep(&line, " \t\r"));)
                        if (w[0])
                                f[n++] = w;
                if (n < 3 || f[0][0] == '#')
                        continue;
                bool revoked = false;
                if (f[0][0] == '@') {
                        if (strcmp(f[0], "@revoked") != 0 || n < 4)
                                continue; /* @cert-authority: host certificates are not checked here */
                        revoked = true;
                        memmove(f, f + 1, 3 * sizeof(*f));
                }
                if (!hosts_match(f[0], name))
                        continue;
                unsigned char *blob = NULL;
                size_t bn = b64_decode(f[2], strlen(f[2]), &blob);
                bool same = bn == key_len && memcmp(blob, key, key_len) == 0;
                free(blob);
                if (same && revoked)
                        return -EKEYREJECTED;
                if (!revoked)
                        listed = true;
                found = found || same;
        }
        return found ? 1 : listed ? -EKEYREJECTED : 0;
}

/* ---- libgit2 callbacks ---- */

static int cb_credentials(git_credential **out, const char *url, const char *user_from_url, unsigned int allowed,
                          void *payload) {
        struct git_source *s = payload;
        /* libgit2 asks again after a refusal: the same answer would loop forever */
        if (++s->auth_attempts > 1) {
                gsrc_cb_fail(s, strdup("authentication failed (check the token or key)"));
                return GIT_EUSER;
        }
        const char *user = user_from_url && user_from_url[0] ? user_from_url : "git";
        if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && s->token) {
                char *colon = strchr(s->token, ':');
                if (!colon)
                        return git_credential_userpass_plaintext_new(out, "x-access-token", s->token);
                _cleanup_free_ char *name = strndup(s->token, (size_t)(colon - s->token));
                return name ? git_credential_userpass_plaintext_new(out, name, colon + 1) : -1;
        }
        if ((allowed & GIT_CREDENTIAL_SSH_KEY) && s->ssh_key_file)
                return git_credential_ssh_key_new(out, user, NULL, s->ssh_key_file, NULL);
        if (allowed & GIT_CREDENTIAL_SSH_KEY)
                return git_credential_ssh_key_from_agent(out, user);
        if (allowed & GIT_CREDENTIAL_USERNAME)
                return git_credential_username_new(out, user);
        gsrc_cb_fail(s, strdup(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT
                                       ? "the server asks for credentials: pass --token-file"
                                       : "the server asks for credentials this source has none of"));
        return GIT_EUSER;
}

static int cb_certificate(git_cert *cert, int valid, const char *host, void *payload) {
        struct git_source *s = payload;
        if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
                return GIT_PASSTHROUGH; /* TLS: libgit2's own verification stands */
        if (s->insecure)
                return 0;
        const git_cert_hostkey *hk = (const git_cert_hostkey *)cert;
        if (!(hk->type & GIT_CERT_SSH_RAW)) {
                gsrc_cb_fail(s, eg_strdup_printf("the host key of %s cannot be checked", host));
                return GIT_EUSER;
        }
        int r = known_hosts_check(s->known_hosts_file, host, s->port, (const unsigned char *)hk->hostkey,
                                  hk->hostkey_len);
        if (r > 0)
                return 0;
        if (r == 0)
                gsrc_cb_fail(s, eg_strdup_printf("host %s is not in %s (add it with ssh-keyscan, or pass "
                                                 "--insecure-skip-host-key-check)",
                                                 host, s->known_hosts_file));
        else if (r == -EKEYREJECTED)
                gsrc_cb_fail(s, eg_strdup_printf("the host key of %s does not match %s: refusing to connect", host,
                                                 s->known_hosts_file));
        else
                gsrc_cb_fail(s, eg_strdup_printf("cannot read %s: %s", s->known_hosts_file, strerror(-r)));
        return GIT_EUSER;
}

git_remote_callbacks gsrc_callbacks(struct git_source *s) {
        git_remote_callbacks cb = GIT_REMOTE_CALLBACKS_INIT;
        cb.credentials = cb_credentials;
        cb.certificate_check = cb_certificate;
        cb.payload = s;
        s->auth_attempts = 0;
        return cb;
}

/* A remote as given: url.insteadOf rewriting is skipped (libgit2 1.5 also leaks a regex
 * match on that path, once per remote). name NULL makes an in-memory remote. */
int gsrc_remote_new(struct git_source *s, const char *name, const char *url, git_remote **ret) {
        git_remote_create_options o = GIT_REMOTE_CREATE_OPTIONS_INIT;
        o.repository = s->repo;
        o.name = name;
        o.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
        return git_remote_create_with_opts(ret, url, &o);
}
