/* UTF-8 validation (utf8.h). */
#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#define NEST_MAX 32 /* deeper than any mayfly message */

bool mf_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07, min = 0x10000;
        else
            return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        if ((size_t)(end - p) <= n)
            return false; /* cut short */
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

static bool message_valid(const ProtobufCMessage *m, const char **field, int depth);

/* One value of field f stored at p (a char ** or a ProtobufCMessage **). */
static bool value_valid(const ProtobufCFieldDescriptor *f, const void *p, const char **field,
                        int depth)
{
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        const char *s = *(char *const *)p;
        if (s && !mf_utf8_valid(s, strlen(s))) {
            *field = f->name;
            return false;
        }
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub && !message_valid(sub, field, depth + 1))
            return false;
    }
    return true;
}

static bool message_valid(const ProtobufCMessage *m, const char **field, int depth)
{
    if (depth > NEST_MAX) {
        *field = m->descriptor->name;
        return false;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t set = *(const uint32_t *)(base + f->quantifier_offset);
            if (set != f->id)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (!value_valid(f, arr + j * sizeof(void *), field, depth))
                    return false;
        } else if (!value_valid(f, base + f->offset, field, depth)) {
            return false;
        }
    }
    return true;
}

bool mf_utf8_message_valid(const struct ProtobufCMessage *m, const char **field)
{
    *field = NULL;
    return m == NULL || message_valid(m, field, 0);
}
