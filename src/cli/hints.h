/* Hints for a user who mistyped: the known word closest to what was typed. */
#pragma once

#include <stddef.h>

/* The word of names (NULL-terminated) within 2 edits of typed and closest to it, the first
 * such on a tie; NULL when none is that close. */
const char *eg_hint_closest(const char *typed, const char *const *names);
