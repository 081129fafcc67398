/* s3_xml: the few S3 XML replies backups read, picked out by tag rather than parsed as a tree. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "etcd-gitops/util.h"

/* The content of the first <tag>...</tag> in xml as it is, malloc'd; *ret_end (may be NULL)
 * points after its end tag. NULL when absent (or xml is NULL, or out of memory). */
char *s3_xml_element(const char *xml, const char *tag, const char **ret_end);
/* The same with the five predefined entities decoded (others are kept as they are). */
char *s3_xml_text(const char *xml, const char *tag, const char **ret_end);
/* Appends s with &, <, > and " escaped, for element content. */
int s3_xml_escape(struct eg_buf *b, const char *s);

/* Whether the document is an <Error> (after an optional XML declaration and whitespace): S3
 * may answer 200 and fail in the body (a CompleteMultipartUpload, after the whitespace it
 * sends to keep the connection alive). xml may be NULL. */
bool s3_xml_is_error(const char *xml);

/* One page of a ListObjectsV2 reply (xml may be NULL): appends each <Key> to *keys, an
 * array of *n strings with room for *alloc, which the caller owns and frees with
 * eg_strv_free() also on failure. *ret_next is the NextContinuationToken when the reply
 * says IsTruncated, else NULL. -ENOMEM only. */
int s3_xml_list_page(const char *xml, char ***keys, size_t *n, size_t *alloc, char **ret_next);

/* A DeleteObjects reply (quiet: only the keys that failed, each in an <Error>; xml may be
 * NULL): clears deleted[i] for each keys[i] an <Error> names. Returns how many <Error>s it
 * has, with the first one's Key, Code and Message in *ret_key, *ret_code and *ret_message
 * (malloc'd; each NULL when absent). */
size_t s3_xml_delete_errors(const char *xml, const char *const *keys, size_t n, bool *deleted, char **ret_key,
                            char **ret_code, char **ret_message);
