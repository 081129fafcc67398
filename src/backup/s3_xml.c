/* s3_xml: the few S3 XML replies backups read, picked out by tag rather than parsed as a tree. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3_xml.h"

char *s3_xml_element(const char *xml, const char *tag, const char **ret_end) {
        _cleanup_free_ char *open = eg_strdup_printf("<%s>", tag), *close = eg_strdup_printf("</%s>", tag);
        if (!open || !close || !xml)
                return NULL;
        const char *a = strstr(xml, open);
        if (!a)
                return NULL;
        a += strlen(open);
        const char *b = strstr(a, close);
        if (!b)
                return NULL;
        if (ret_end)
                *ret_end = b + strlen(close);
        return strndup(a, (size_t)(b - a));
}

char *s3_xml_text(const char *xml, const char *tag, const char **ret_end) {
        _cleanup_free_ char *raw = s3_xml_element(xml, tag, ret_end);
        if (!raw)
                return NULL;
        struct eg_buf out;
        eg_buf_init(&out, 0);
        static const struct {
                const char *ent;
                char c;
        } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        for (const char *p = raw; *p;) {
                size_t i;
                for (i = 0; *p == '&' && i < EG_ELEMENTSOF(ents); i++)
                        if (strncmp(p, ents[i].ent, strlen(ents[i].ent)) == 0)
                                break;
                if (*p == '&' && i < EG_ELEMENTSOF(ents)) {
                        eg_buf_append(&out, &ents[i].c, 1);
                        p += strlen(ents[i].ent);
                } else
                        eg_buf_append(&out, p++, 1);
        }
        if (out.len == 0)
                eg_buf_puts(&out, "");
        return eg_buf_steal(&out);
}

int s3_xml_escape(struct eg_buf *b, const char *s) {
        int r = 0;
        for (; *s && r >= 0; s++)
                r = *s == '&'   ? eg_buf_puts(b, "&amp;")
                    : *s == '<' ? eg_buf_puts(b, "&lt;")
                    : *s == '>' ? eg_buf_puts(b, "&gt;")
                    : *s == '"' ? eg_buf_puts(b, "&quot;")
                                : eg_buf_append(b, s, 1);
        return r;
}

bool s3_xml_is_error(const char *xml) {
        if (!xml)
                return false;
        xml += strspn(xml, " \t\r\n");
        if (strncmp(xml, "<?xml", 5) == 0) {
                const char *end = strstr(xml, "?>");
                if (!end)
                        return false;
                xml = end + 2 + strspn(end + 2, " \t\r\n");
        }
        return strncmp(xml, "<Error>", 7) == 0;
}

int s3_xml_list_page(const char *xml, char ***keys, size_t *n, size_t *alloc, char **ret_next) {
        const char *p = xml, *end;
        char *k;
        *ret_next = NULL;
        while (p && (k = s3_xml_text(p, "Key", &end))) {
                if (*n == *alloc) {
                        size_t na = *alloc ? *alloc * 2 : 16;
                        char **nv = realloc(*keys, na * sizeof(**keys));
                        if (!nv) {
                                free(k);
                                return -ENOMEM;
                        }
                        *keys = nv;
                        *alloc = na;
                }
                (*keys)[(*n)++] = k;
                p = end;
        }
        _cleanup_free_ char *trunc = s3_xml_text(xml, "IsTruncated", NULL);
        if (trunc && strcmp(trunc, "true") == 0)
                *ret_next = s3_xml_text(xml, "NextContinuationToken", NULL);
        return 0;
}

size_t s3_xml_delete_errors(const char *xml, const char *const *keys, size_t n, bool *deleted, char **ret_key,
                            char **ret_code, char **ret_message) {
        const char *p = xml, *end;
        char *e;
        size_t failed = 0;
        *ret_key = *ret_code = *ret_message = NULL;
        while (p && (e = s3_xml_element(p, "Error", &end))) {
                char *key = s3_xml_text(e, "Key", NULL);
                for (size_t i = 0; key && i < n; i++)
                        if (strcmp(keys[i], key) == 0)
                                deleted[i] = false;
                if (failed++ == 0) {
                        *ret_key = key;
                        *ret_code = s3_xml_text(e, "Code", NULL);
                        *ret_message = s3_xml_text(e, "Message", NULL);
                } else
                        free(key);
                free(e);
                p = end;
        }
        return failed;
}
