/* Logging: a level filter in front of one replaceable sink. */
#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <stdbool.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/utf8.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static mf_log_sink_cb log_sink;
static void *log_sink_ctx;
static enum mf_log_level log_level = MF_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static bool log_json; /* under log_lock */

/* One JSON object: jansson escapes quotes, control characters and
 * non-ASCII; a line that is not UTF-8 has its high bytes replaced first. */
static void json_line(const char *stamp, enum mf_log_level level, const char *module,
                      const char *line)
{
    char clean[1024];
    const char *msg = line;
    if (!mf_utf8_valid(line, strlen(line))) {
        size_t i = 0;
        for (; line[i] && i + 1 < sizeof(clean); i++)
            clean[i] = (unsigned char)line[i] < 0x80 ? line[i] : '?';
        clean[i] = 0;
        msg = clean;
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", stamp, "level", level_names[level],
                          "module", module && mf_utf8_valid(module, strlen(module)) ? module : "?",
                          "msg", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
}

static void stderr_sink(void *ctx, enum mf_log_level level, const char *module, const char *line)
{
    (void)ctx;
    struct timespec ts;
    struct tm tm;
    char stamp[32], full[48];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_json) {
        snprintf(full, sizeof(full), "%s.%03ldZ", stamp, ts.tv_nsec / 1000000);
        return json_line(full, level, module, line);
    }
    fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, ts.tv_nsec / 1000000,
            level_names[level], module, line);
}

int mf_log_set_format(const char *name)
{
    bool json;
    if (strcmp(name, "text") == 0)
        json = false;
    else if (strcmp(name, "json") == 0)
        json = true;
    else
        return MF_EINVAL;
    pthread_mutex_lock(&log_lock);
    log_json = json;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void mf_log_set_sink(mf_log_sink_cb sink, void *ctx)
{
    pthread_mutex_lock(&log_lock);
    log_sink = sink;
    log_sink_ctx = ctx;
    pthread_mutex_unlock(&log_lock);
}

void mf_log_set_level(enum mf_log_level level)
{
    MF_ASSERT(level >= MF_LOG_DEBUG && level <= MF_LOG_OFF);
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum mf_log_level mf_log_get_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int mf_log_level_parse(const char *s, enum mf_log_level *out)
{
    for (int i = MF_LOG_DEBUG; i <= MF_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum mf_log_level)i;
            return 0;
        }
    }
    return MF_EINVAL;
}

const char *mf_log_level_name(enum mf_log_level level)
{
    MF_ASSERT(level >= MF_LOG_DEBUG && level <= MF_LOG_OFF);
    return level_names[level];
}

void mf_logv(enum mf_log_level level, const char *module, const char *fmt, va_list ap)
{
    if (level < mf_log_get_level() || level >= MF_LOG_OFF)
        return;
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    pthread_mutex_lock(&log_lock);
    if (log_sink)
        log_sink(log_sink_ctx, level, module, line);
    else
        stderr_sink(NULL, level, module, line);
    pthread_mutex_unlock(&log_lock);
}

void mf_log(enum mf_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mf_logv(level, module, fmt, ap);
    va_end(ap);
}

void mf_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "mayfly: assertion failed: %s (%s:%d %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}
