/* Logging: levels and one sink.
 *
 * Every module logs through mf_log(); where the lines go is decided once by
 * mf_log_set_sink() (default: stderr with a timestamp). The pure Raft core does
 * not log: it only emits trace events that its caller may log.
 * Never pass a secret (token, password, key, plaintext value) to these calls.
 */
#ifndef MF_COMMON_LOG_H
#define MF_COMMON_LOG_H

#include <stdarg.h>

enum mf_log_level {
    MF_LOG_DEBUG = 0,
    MF_LOG_INFO = 1,
    MF_LOG_WARN = 2,
    MF_LOG_ERROR = 3,
    MF_LOG_OFF = 4,
};

/* A sink receives one formatted line (no trailing newline). `ctx` is the
 * pointer given to mf_log_set_sink. Called with an internal lock held, so a
 * sink must not log. */
typedef void (*mf_log_sink_cb)(void *ctx, enum mf_log_level level, const char *module,
                               const char *line);

/* Install the sink (NULL restores the default stderr sink). Thread-safe. */
void mf_log_set_sink(mf_log_sink_cb sink, void *ctx);
void mf_log_set_level(enum mf_log_level level);
enum mf_log_level mf_log_get_level(void);

/* The default sink's format: "text" (a timestamp, the level, the module and
 * the line) or "json" (one object a line: {"ts","level","module","msg"}).
 * Returns 0 or MF_EINVAL (name unknown). Thread-safe. */
int mf_log_set_format(const char *name);

/* Parse "debug" | "info" | "warn" | "error" | "off". Returns 0 or MF_EINVAL. */
int mf_log_level_parse(const char *s, enum mf_log_level *out);
const char *mf_log_level_name(enum mf_log_level level);

void mf_log(enum mf_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mf_logv(enum mf_log_level level, const char *module, const char *fmt, va_list ap);

#define MF_DEBUG(mod, ...) mf_log(MF_LOG_DEBUG, mod, __VA_ARGS__)
#define MF_INFO(mod, ...) mf_log(MF_LOG_INFO, mod, __VA_ARGS__)
#define MF_WARN(mod, ...) mf_log(MF_LOG_WARN, mod, __VA_ARGS__)
#define MF_ERROR(mod, ...) mf_log(MF_LOG_ERROR, mod, __VA_ARGS__)

#endif
