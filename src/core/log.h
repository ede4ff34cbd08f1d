/*
 * Logging. One JSON object a line on stderr (or plain text when asked):
 * {"ts":"...","level":"warn","fn":"...","msg":"..."}. Never pass a token,
 * code, secret or cookie value here: log eb_log_fp() of it instead.
 * Arguments need no escaping by the caller: the text format escapes every
 * %s argument, the JSON format the whole message (control characters,
 * invalid UTF-8).
 */
#ifndef EB_LOG_H
#define EB_LOG_H

#include <stddef.h>

enum eb_log_level { EB_LOG_DEBUG, EB_LOG_INFO, EB_LOG_WARN, EB_LOG_ERR };

/* Set the least level written and the format (json != 0: JSON lines). */
void eb_log_init(int level, int json);
int eb_log_level(void);

void eb_log(int level, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like eb_log, with ": strerror(errno)" appended. */
void eb_log_errno(int level, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write one already formatted line (a newline is added) in one write(2). */
void eb_log_line(const char *line, size_t len);

/*
 * Append n bytes of s to b as the text format logs a value: control
 * characters and bytes that are not UTF-8 escaped (\n, \xNN...), '\\'
 * and '"' escaped, the whole quoted when it holds a blank, '=' or '"' or is
 * empty. The access log uses it for the request path.
 */
struct eb_buf;
void eb_log_add_text(struct eb_buf *b, const char *s, size_t n);

/* A short fingerprint of a secret for logs: 12 hex chars of SHA-256. */
void eb_log_fp(const void *secret, size_t len, char out[13]);

#define log_debug(...) eb_log(EB_LOG_DEBUG, __func__, __VA_ARGS__)
#define log_info(...)  eb_log(EB_LOG_INFO, __func__, __VA_ARGS__)
#define log_warnx(...) eb_log(EB_LOG_WARN, __func__, __VA_ARGS__)
#define log_warn(...)  eb_log_errno(EB_LOG_WARN, __func__, __VA_ARGS__)
#define log_errx(...)  eb_log(EB_LOG_ERR, __func__, __VA_ARGS__)
#define log_err(...)   eb_log_errno(EB_LOG_ERR, __func__, __VA_ARGS__)

#endif
