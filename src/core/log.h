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
/*
 * log.personal_data: 0 keeps a person's account, login, user identifier
 * and email out of the log (eb_log_pd). Default 1.
 */
void eb_log_set_personal(int on);
/*
 * Under systemd: when JOURNAL_STREAM names our stderr (dev:ino), every
 * line starts with its syslog priority, "<3>" error ... "<7>" debug
 * (sd-daemon(3)), so that the journal keeps the level. Called at start;
 * 1 when the prefix is on.
 */
int eb_log_journal_detect(void);
/* The prefix for level ("" when not under the journal). */
const char *eb_log_prio(int level);

/*
 * The request a thread works for: every line it logs carries these as
 * fields ("rid", "trace_id", "tenant"; key=value in the text format).
 * The HTTP server sets it around a request's handler, the work queue
 * and the asynchronous HTTP client carry it into the jobs and transfers
 * they run for the request. Empty strings: no field.
 */
struct eb_log_ctx {
	char rid[17];
	char trace_id[33]; /* W3C trace-context, 32 lowercase hex */
	char span_id[17];  /* our span, 16 lowercase hex */
	unsigned char trace_flags;
	char tenant[64];
};
/* Copy the thread's context into out (zeroed when none). */
void eb_log_ctx_get(struct eb_log_ctx *out);
/* Make ctx the thread's context (NULL: clear it). */
void eb_log_ctx_set(const struct eb_log_ctx *ctx);
/* Set the tenant of the thread's context. */
void eb_log_ctx_tenant(const char *tenant);

/*
 * W3C traceparent "00-<32 hex trace>-<16 hex parent>-<2 hex flags>":
 * 0 and the trace id and flags when value is a valid version-00 header
 * (or a later version's first four fields), -1 for anything else (an
 * all-zero id, upper case, a wrong length): a malformed value is never
 * used or echoed.
 */
int eb_log_trace_parse(const char *value, char trace_id[33],
                       unsigned char *flags);
/* Start ctx's trace: from a valid incoming traceparent (may be NULL),
 * else a new random trace id; a new span id either way. */
void eb_log_trace_start(struct eb_log_ctx *ctx, const char *traceparent);
/* The traceparent header line to send upstream ("traceparent: 00-...")
 * from the thread's context; 0, or -1 when the thread has no trace. */
int eb_log_traceparent(char *out, size_t len);

/*
 * Fields of one event line, each NULL or empty when absent: what happened
 * ("signin.denied"), why ("no_mapping"), the grant concerned. Never a
 * token or secret here.
 */
struct eb_log_ev {
	const char *event;
	const char *reason;
	const char *grant;
	const char *tenant; /* overrides the thread context's */
};
void eb_log_event(int level, const char *fn, const struct eb_log_ev *ev,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * A person's identifier as it may be logged: s itself with
 * log.personal_data on (the default), else "~" and 12 hex digits of an
 * HMAC-SHA-256 under a key drawn at start (the same person gives the same
 * value for the life of the process, no way back to the name), "-" for
 * NULL. out must hold EB_LOG_PD_LEN bytes; returns s or out.
 */
#define EB_LOG_PD_LEN 14
const char *eb_log_pd(const char *s, char out[EB_LOG_PD_LEN]);

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
/* log_ev(EB_LOG_INFO, EB_EV("signin.ok", NULL, gid), "fmt", ...) */
#define log_ev(level, ev, ...) eb_log_event(level, __func__, &(ev), __VA_ARGS__)
#define EB_EV(e, r, g)                                                         \
	((struct eb_log_ev){.event = (e), .reason = (r), .grant = (g)})
/* The same for a thread that works for no request (a tenant's job). */
#define EB_EVT(t, e, r, g)                                                     \
	((struct eb_log_ev){                                                   \
	    .event = (e), .reason = (r), .grant = (g), .tenant = (t)})

#endif
