/* Output formats shared by commands: aligned tables, JSON and YAML. */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

enum eg_out_format { EG_OUT_TABLE, EG_OUT_WIDE, EG_OUT_JSON, EG_OUT_YAML, EG_OUT_TEXT, EG_OUT_NAME };
/* Accepts the names in allowed (a NULL-terminated list such as {"table","json",NULL}). */
int eg_out_parse_format(const char *s, const char *const *allowed, enum eg_out_format *ret);
/* The same for command's -o, saying on stderr what it takes ("-o must be table or json") when s
 * is not one of them. */
int eg_out_option(const char *command, const char *s, const char *const *allowed, enum eg_out_format *ret);

struct eg_table;
int eg_table_new(size_t n_cols, struct eg_table **ret);
/* Copies n_cols strings (NULL prints as "-"). */
int eg_table_add(struct eg_table *t, const char *const *cells);
void eg_table_print(struct eg_table *t, FILE *f);
void eg_table_free(struct eg_table *t);

/* An age as kubectl shows one: 45s, 12m, 5h, 3d; "-" for an unknown (0) start. */
void eg_out_age(int64_t since_ms, int64_t now_ms, char buf[static 24]);

int eg_out_json(json_t *j, FILE *f);
/* Block-style YAML through libyaml's emitter. */
int eg_out_yaml(json_t *j, FILE *f);

/* one or many, by n: "1 cluster", "2 clusters" */
static inline const char *eg_plural(size_t n, const char *one, const char *many) { return n == 1 ? one : many; }
