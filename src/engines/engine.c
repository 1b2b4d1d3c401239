/* Engine registry and the helpers every engine shares. */
#include "engines/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/seq.h"

#include "engines/pki.h"
#include "engines/postgres.h"

#define ENGINES_EXTRA_MAX 4

/* Types registered at run time (tests' fake engines). Written before any
 * lookup, at program start, on one thread. */
static const struct mf_engine_ops *extra[ENGINES_EXTRA_MAX];
static size_t extra_len;

int mf_engine_register(const struct mf_engine_ops *ops)
{
    if (mf_engine_find(ops->type))
        return MF_EEXISTS;
    if (extra_len == ENGINES_EXTRA_MAX)
        return MF_ETOOLARGE;
    extra[extra_len++] = ops;
    return 0;
}

const struct mf_engine_ops *mf_engine_find(const char *type)
{
    /* Strong references: with static libraries a weak one would not pull
     * an engine's object file into the program. */
    const struct mf_engine_ops *all[] = {&mf_engine_postgres_ops, &mf_engine_pki_ops};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->type, type) == 0)
            return all[i];
    for (size_t i = 0; i < extra_len; i++)
        if (strcmp(extra[i]->type, type) == 0)
            return extra[i];
    return NULL;
}

void mf_engine_cred_free(struct mf_engine_cred *c)
{
    for (size_t i = 0; i < c->fields_len; i++) {
        free(c->fields[i].key);
        if (c->fields[i].value) {
            OPENSSL_cleanse(c->fields[i].value, strlen(c->fields[i].value));
            free(c->fields[i].value);
        }
    }
    memset(c, 0, sizeof(*c));
}

/* SEQ is written as in lease ids (common/seq.h: 13 Crockford base32
 * digits), so an operator sees the same SEQ in "lease/x/0000000000004" and in
 * the role "mf_0000000000004". */
void mf_engine_name(uint64_t seq, char *buf, size_t len)
{
    char s[MF_SEQ_CHARS + 1];
    mf_seq_format(seq, s);
    snprintf(buf, len, "%s%s", MF_ENGINE_NAME_PREFIX, s);
}

int mf_engine_name_parse(const char *name, uint64_t *seq)
{
    size_t plen = strlen(MF_ENGINE_NAME_PREFIX);
    if (strncmp(name, MF_ENGINE_NAME_PREFIX, plen) != 0 || strlen(name) != plen + MF_SEQ_CHARS)
        return MF_EINVAL;
    for (const char *p = name + plen; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            return MF_EINVAL; /* names are lowercase: PostgreSQL folds case */
    return mf_seq_parse(name + plen, MF_SEQ_CHARS, seq) ? MF_EINVAL : 0;
}
