/* libFuzzer target: any bytes as an S3 XML reply, through what backups read from them: a
 * ListObjectsV2 page, a CreateMultipartUpload's UploadId, an error document, a DeleteObjects
 * reply; and every key found, escaped and read back, must come back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "../../src/backup/internal.h"
#include "../../src/backup/s3_xml.h"

/* keys asked to be deleted: some of those in the seed replies, and one never named */
static const char *const delete_keys[] = {"default/demo/2026-11-28T030000Z.db", "a&b<c>.db", "", "never-named"};
#define N_DELETE EG_ELEMENTSOF(delete_keys)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s escaped as element content and read back by tag is s again. */
static void escape_round_trip(const char *s) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        if (eg_buf_puts(&b, "<Key>") < 0 || s3_xml_escape(&b, s) < 0 || eg_buf_puts(&b, "</Key>") < 0)
                abort();
        const char *end = NULL;
        char *back = s3_xml_text(b.data, "Key", &end);
        if (!back || strcmp(back, s) != 0 || end != b.data + b.len)
                abort();
        free(back);
        eg_buf_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* replies reach the parsers as the NUL-terminated body buffer */
        char *xml = strndup((const char *)data, size);
        if (!xml)
                return 0;

        char **keys = NULL, *next = NULL;
        size_t n = 0, alloc = 0;
        if (s3_xml_list_page(xml, &keys, &n, &alloc, &next) < 0)
                abort();
        if (n > alloc || (next && !strstr(xml, "<NextContinuationToken>")))
                abort();
        for (size_t i = 0; i < n; i++) {
                if (!keys[i])
                        abort();
                escape_round_trip(keys[i]);
        }
        /* a second page appends */
        size_t first = n;
        char *next2 = NULL;
        if (s3_xml_list_page(xml, &keys, &n, &alloc, &next2) < 0 || n != 2 * first)
                abort();
        for (size_t i = 0; i < first; i++)
                if (strcmp(keys[i], keys[first + i]) != 0)
                        abort();
        eg_strv_free(keys, n);
        free(next);
        free(next2);
        if (s3_xml_list_page(NULL, &keys, &n, &alloc, &next) < 0 || next)
                abort();

        free(s3_xml_text(xml, "UploadId", NULL));

        if (s3_xml_is_error(xml)) {
                free(s3_xml_text(xml, "Code", NULL));
                free(s3_xml_text(xml, "Message", NULL));
        }

        bool deleted[N_DELETE];
        for (size_t i = 0; i < N_DELETE; i++)
                deleted[i] = true;
        char *key = NULL, *code = NULL, *message = NULL;
        size_t failed = s3_xml_delete_errors(xml, delete_keys, N_DELETE, deleted, &key, &code, &message);
        if ((failed == 0 && (key || code || message)) || (failed > 0 && !strstr(xml, "<Error>")))
                abort();
        size_t kept = 0;
        for (size_t i = 0; i < N_DELETE; i++)
                kept += !deleted[i];
        if (kept > failed || (!deleted[N_DELETE - 1] && !strstr(xml, "never-named")))
                abort();
        free(key);
        free(code);
        free(message);

        free(xml);
        return 0;
}
