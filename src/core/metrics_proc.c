/*
 * The process_* metrics every Prometheus client library exports, read
 * from /proc/self at each scrape, and the notAfter of a PEM certificate
 * (enrollbridge_tls_certificate_expiry_timestamp_seconds).
 */
#include "core/metrics.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

struct proc_stat {
	unsigned long long utime, stime, starttime; /* clock ticks */
	unsigned long long vsize;                   /* bytes */
	long long rss;                              /* pages */
};

/* /proc/self/stat: the fields after the command's closing parenthesis. */
static int
read_stat(struct proc_stat *ps)
{
	char buf[2048], *p;
	size_t n;
	FILE *f;

	if ((f = fopen("/proc/self/stat", "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice threads itreal
	 * starttime vsize rss */
	if (sscanf(p + 2,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	           "%*d %*d %*d %*d %*d %*d %llu %llu %lld",
	           &ps->utime, &ps->stime, &ps->starttime, &ps->vsize,
	           &ps->rss) != 5)
		return -1;
	return 0;
}

/* The boot time (btime of /proc/stat), or -1. */
static long long
boot_time(void)
{
	char line[256];
	long long bt = -1;
	FILE *f;

	if ((f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

static long
open_fds(void)
{
	struct dirent *de;
	long n = 0;
	DIR *d;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static int
family(struct eb_buf *o, const char *name, const char *type, const char *help,
       double v)
{
	return eb_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name,
	                     help, name, type, name, v);
}

int
eb_metrics_render_process(struct eb_buf *o)
{
	struct proc_stat ps;
	struct rlimit rl;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds;
	long long bt = boot_time();
	int rc = 0;

	if (tick > 0 && page > 0 && read_stat(&ps) == 0) {
		rc |= family(o, "process_cpu_seconds_total", "counter",
		             "Total user and system CPU time spent in seconds.",
		             (double)(ps.utime + ps.stime) / (double)tick);
		rc |= family(o, "process_resident_memory_bytes", "gauge",
		             "Resident memory size in bytes.",
		             (double)ps.rss * (double)page);
		rc |= family(o, "process_virtual_memory_bytes", "gauge",
		             "Virtual memory size in bytes.", (double)ps.vsize);
		if (bt > 0)
			rc |= family(
			    o, "process_start_time_seconds", "gauge",
			    "Start time of the process since unix epoch "
			    "in seconds.",
			    (double)bt + (double)ps.starttime / (double)tick);
	}
	if ((fds = open_fds()) >= 0)
		rc |= family(o, "process_open_fds", "gauge",
		             "Number of open file descriptors.", (double)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		rc |= family(o, "process_max_fds", "gauge",
		             "Maximum number of open file descriptors.",
		             (double)rl.rlim_cur);
	return rc ? -1 : 0;
}

int
eb_metrics_cert_not_after(const char *pem, size_t len, long long *t)
{
	const ASN1_TIME *na;
	struct tm tm;
	X509 *x = NULL;
	BIO *bio;
	int rc = -1;

	if (pem == NULL || len > INT32_MAX ||
	    (bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL &&
	    (na = X509_get0_notAfter(x)) != NULL &&
	    ASN1_TIME_to_tm(na, &tm) == 1) {
		*t = (long long)timegm(&tm);
		rc = 0;
	}
	X509_free(x);
	BIO_free(bio);
	return rc;
}
