/* MF_ASSERT: always on, in every build type. A failed assertion is a
 * programmer error: print where and abort so the core dump shows the state. */
#ifndef MF_COMMON_ASSERT_H
#define MF_COMMON_ASSERT_H

void mf_assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

#define MF_ASSERT(expr) \
    ((expr) ? (void)0 : mf_assert_fail(#expr, __FILE__, __LINE__, __func__))

#endif
