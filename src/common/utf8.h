/* UTF-8 validation of what clients send: paths, names, keys.
 *
 * A name that is not valid UTF-8 would be stored, logged, listed and compared
 * as bytes that no client renders the same way (an overlong "/" or a lone
 * surrogate hides one name behind another), so requests holding one are
 * refused with INVALID_ARGUMENT before any handler sees them. The rule is
 * RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. */
#ifndef MF_COMMON_UTF8_H
#define MF_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

struct ProtobufCMessage;

/* Whether the len bytes at s are valid UTF-8 (NUL bytes are valid UTF-8;
 * the frame decoder refuses those on its own). */
bool mf_utf8_valid(const char *s, size_t len);

/* Whether every string field of m, its nested messages and map entries
 * included (oneof members only when set), is valid UTF-8. On false, *field
 * names the first field that is not (its descriptor's name, static). Nesting
 * deeper than 32 messages counts as invalid. Pure: reads the descriptors. */
bool mf_utf8_message_valid(const struct ProtobufCMessage *m, const char **field);

#endif
