/*
 * Trusted proxies (see trusted.h): the CIDR parser and matcher, and the
 * readers of X-Forwarded-For and RFC 7239 Forwarded that pick the client
 * address out of a chain of hops. The headers come from whoever is in front
 * of the balancer, so every reader is strict, bounded, and answers "use the
 * peer address" for anything it cannot vouch for.
 */
#include "core/trusted.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* One hop of a forwarding chain: an address, or an opaque node (an
 * obfuscated identifier, "unknown", or a Forwarded element without for=). */
struct hop {
	int opaque;
	int family;
	unsigned char addr[16];
};

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address: a dual-stack
 * socket reports IPv4 peers that way. */
static void
unmap(int *family, unsigned char addr[16])
{
	if (*family == 6 && memcmp(addr, v4mapped, 12) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = 4;
	}
}

/* NUL-terminated copy of s[0..len) into buf, or -1 when it does not fit. */
static int
copy(char *buf, size_t buflen, const char *s, size_t len)
{
	if (len == 0 || len >= buflen)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

/* 1 to 5 digits, at most 65535. */
static int
valid_port(const char *s, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v <= 65535;
}

int
eb_trusted_parse_addr(const char *s, size_t len, int *family,
                      unsigned char addr[16])
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *end = s + len, *p, *colon;
	size_t ncolon = 0;

	memset(addr, 0, 16);
	if (len > 0 && s[0] == '[') {
		if ((p = memchr(s, ']', len)) == NULL ||
		    copy(buf, sizeof(buf), s + 1, (size_t)(p - s - 1)) == -1 ||
		    inet_pton(AF_INET6, buf, addr) != 1)
			return -1;
		p++;
		if (p != end &&
		    (*p != ':' || !valid_port(p + 1, (size_t)(end - p - 1))))
			return -1;
		*family = 6;
		unmap(family, addr);
		return 0;
	}
	for (p = s, colon = NULL; p < end; p++)
		if (*p == ':') {
			ncolon++;
			colon = p;
		}
	if (ncolon >= 2) { /* a bare IPv6 address: no port */
		if (copy(buf, sizeof(buf), s, len) == -1 ||
		    inet_pton(AF_INET6, buf, addr) != 1)
			return -1;
		*family = 6;
		unmap(family, addr);
		return 0;
	}
	if (ncolon == 1) {
		if (!valid_port(colon + 1, (size_t)(end - colon - 1)))
			return -1;
		len = (size_t)(colon - s);
	}
	if (copy(buf, sizeof(buf), s, len) == -1 ||
	    inet_pton(AF_INET, buf, addr) != 1)
		return -1;
	*family = 4;
	return 0;
}

int
eb_trusted_parse_cidr(const char *s, struct eb_cidr *out, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s), i;
	unsigned long bits = 0;
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (copy(buf, sizeof(buf), s, alen) == -1) {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = 4;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = 6;
	else {
		*why = "not an IPv4 or IPv6 address (CIDR \"address/bits\")";
		return -1;
	}
	max = out->family == 4 ? 32 : 128;
	if (slash == NULL)
		bits = max;
	else {
		const char *b = slash + 1;

		if (b[0] == '\0' || strlen(b) > 3) {
			*why = "the prefix length must be a number";
			return -1;
		}
		for (i = 0; b[i] != '\0'; i++) {
			if (!isdigit((unsigned char)b[i])) {
				*why = "the prefix length must be a number";
				return -1;
			}
			bits = bits * 10 + (unsigned long)(b[i] - '0');
		}
		if (bits > max) {
			*why = out->family == 4
			           ? "the prefix length must be at most 32"
			           : "the prefix length must be at most 128";
			return -1;
		}
	}
	if (bits == 0) {
		*why = "a /0 network trusts every address: anyone could "
		       "choose the client address";
		return -1;
	}
	for (i = bits; i < max; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			*why = "host bits are set beyond the prefix length";
			return -1;
		}
	out->bits = (unsigned char)bits;
	if (out->family == 6 && bits >= 96 &&
	    memcmp(out->addr, v4mapped, 12) == 0) {
		int fam = 6;

		unmap(&fam, out->addr);
		out->family = 4;
		out->bits = (unsigned char)(bits - 96);
		if (out->bits == 0) {
			*why = "a /0 network trusts every address: anyone "
			       "could choose the client address";
			return -1;
		}
	}
	return 0;
}

static int
in_cidr(const struct eb_cidr *c, int family, const unsigned char *addr)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;
	unsigned char mask;

	if (c->family != family || memcmp(c->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

int
eb_trusted_contains(const struct eb_trusted *t, int family,
                    const unsigned char *addr)
{
	unsigned char a[16];
	size_t i;

	if (t == NULL || t->n == 0 || (family != 4 && family != 6))
		return 0;
	memcpy(a, addr, family == 4 ? 4 : 16);
	if (family == 4)
		memset(a + 4, 0, 12);
	unmap(&family, a);
	for (i = 0; i < t->n; i++)
		if (in_cidr(&t->v[i], family, a))
			return 1;
	return 0;
}

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 tchar. */
static int
is_tchar(char c)
{
	return isalnum((unsigned char)c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* An opaque Forwarded node: "unknown" or an obfuscated identifier
 * ("_" followed by ALPHA / DIGIT / "." / "_" / "-"), with any port. */
static int
opaque_node(const char *v, size_t len)
{
	size_t i;

	if (len >= 7 && strncasecmp(v, "unknown", 7) == 0 &&
	    (len == 7 || v[7] == ':'))
		return 1;
	if (len < 2 || v[0] != '_')
		return 0;
	for (i = 1; i < len && v[i] != ':'; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
		    v[i] != '_' && v[i] != '-')
			return 0;
	return 1;
}

/* X-Forwarded-For: comma-separated addresses; empty items skipped. */
static int
read_xff(const char *s, struct hop *h, size_t *np)
{
	const char *p = s, *b, *e;
	size_t n = 0;

	for (;;) {
		while (is_ows(*p))
			p++;
		b = p;
		while (*p != '\0' && *p != ',')
			p++;
		e = p;
		while (e > b && is_ows(e[-1]))
			e--;
		if (e > b) {
			if (n == EB_TRUSTED_MAX_HOPS)
				return -1;
			memset(&h[n], 0, sizeof(h[n]));
			if ((size_t)(e - b) == 7 &&
			    strncasecmp(b, "unknown", 7) == 0)
				h[n].opaque = 1;
			else if (eb_trusted_parse_addr(b, (size_t)(e - b),
			                               &h[n].family,
			                               h[n].addr) == -1)
				return -1;
			n++;
		}
		if (*p == '\0')
			break;
		p++;
	}
	*np = n;
	return 0;
}

/*
 * Forwarded (RFC 7239): elements separated by ",", pairs within an element
 * by ";", each pair token "=" (token / quoted-string). Only for= is read;
 * a quoted IPv6 address must be bracketed, and an element without for= is
 * an opaque hop.
 */
static int
read_forwarded(const char *s, struct hop *h, size_t *np)
{
	char val[128];
	const char *p = s, *name;
	size_t n = 0, nlen, vlen;
	int have_for, quoted;

	for (;;) {
		if (n == EB_TRUSTED_MAX_HOPS)
			return -1;
		memset(&h[n], 0, sizeof(h[n]));
		have_for = 0;
		for (;;) { /* the pairs of one element */
			while (is_ows(*p))
				p++;
			if (*p == ',' || *p == '\0')
				break;
			name = p;
			while (is_tchar(*p))
				p++;
			nlen = (size_t)(p - name);
			if (nlen == 0 || *p++ != '=')
				return -1;
			vlen = 0;
			quoted = *p == '"';
			if (quoted) {
				for (p++; *p != '"'; p++) {
					if (*p == '\\' && p[1] != '\0')
						p++;
					else if (*p == '\0' || *p == '\\')
						return -1;
					if (vlen + 1 >= sizeof(val))
						return -1;
					val[vlen++] = *p;
				}
				p++;
			} else {
				while (is_tchar(*p)) {
					if (vlen + 1 >= sizeof(val))
						return -1;
					val[vlen++] = *p++;
				}
			}
			val[vlen] = '\0';
			if (vlen == 0)
				return -1;
			while (is_ows(*p))
				p++;
			if (*p != ';' && *p != ',' && *p != '\0')
				return -1;
			if (*p == ';')
				p++;
			if (nlen != 3 || strncasecmp(name, "for", 3) != 0)
				continue;
			if (have_for++)
				return -1; /* two for= in one element */
			if (opaque_node(val, vlen))
				h[n].opaque = 1;
			else if ((val[0] != '[' && memchr(val, ':', vlen) &&
			          strchr(strchr(val, ':') + 1, ':')) ||
			         eb_trusted_parse_addr(val, vlen, &h[n].family,
			                               h[n].addr) == -1)
				return -1; /* IPv6 without brackets, or junk */
		}
		if (!have_for)
			h[n].opaque = 1;
		n++;
		if (*p == '\0')
			break;
		p++; /* ',' */
	}
	*np = n;
	return 0;
}

/* The right-most hop that is not a trusted proxy. */
static enum eb_trusted_result
pick(const struct eb_trusted *t, const struct hop *h, size_t n,
     const struct hop **out)
{
	size_t i;

	if (n == 0)
		return EB_TRUSTED_NONE;
	for (i = n; i-- > 0;) {
		if (h[i].opaque)
			return EB_TRUSTED_NONE;
		if (!eb_trusted_contains(t, h[i].family, h[i].addr)) {
			*out = &h[i];
			return EB_TRUSTED_FOUND;
		}
	}
	*out = &h[0]; /* all trusted: the one furthest away */
	return EB_TRUSTED_FOUND;
}

static enum eb_trusted_result
one(const struct eb_trusted *t, const char *s, int forwarded, struct hop *h,
    size_t *np, const struct hop **out, const char **why)
{
	size_t n = 0;

	if (strlen(s) > EB_TRUSTED_MAX_HEADER) {
		*why = "too long";
		return EB_TRUSTED_BAD;
	}
	if ((forwarded ? read_forwarded(s, h, &n) : read_xff(s, h, &n)) == -1) {
		*why = forwarded ? "malformed Forwarded"
		                 : "malformed X-Forwarded-For";
		return EB_TRUSTED_BAD;
	}
	*np = n;
	return pick(t, h, n, out);
}

/* The hops h[0..n) as "a, b, c" into out; -1 when it does not fit. */
static int
hops_text(const struct hop *h, size_t n, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];
	size_t i, len = 0, al;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (inet_ntop(h[i].family == 4 ? AF_INET : AF_INET6, h[i].addr,
		              a, sizeof(a)) == NULL)
			return -1;
		al = strlen(a);
		if (len + (i > 0 ? 2 : 0) + al + 1 > outlen)
			return -1;
		if (i > 0) {
			memcpy(out + len, ", ", 2);
			len += 2;
		}
		memcpy(out + len, a, al + 1);
		len += al;
	}
	return 0;
}

enum eb_trusted_result
eb_trusted_client(const struct eb_trusted *t, const char *xff, const char *fwd,
                  char *out, size_t outlen, const char **why)
{
	return eb_trusted_client_chain(t, xff, fwd, out, outlen, NULL, 0, why);
}

enum eb_trusted_result
eb_trusted_client_chain(const struct eb_trusted *t, const char *xff,
                        const char *fwd, char *out, size_t outlen, char *via,
                        size_t vialen, const char **why)
{
	struct hop hx[EB_TRUSTED_MAX_HOPS], hf[EB_TRUSTED_MAX_HOPS];
	const struct hop *cx = NULL, *cf = NULL, *c, *end;
	enum eb_trusted_result rx = EB_TRUSTED_NONE, rf = EB_TRUSTED_NONE;
	size_t nx = 0, nf = 0;

	*why = NULL;
	if (xff != NULL &&
	    (rx = one(t, xff, 0, hx, &nx, &cx, why)) == EB_TRUSTED_BAD)
		return EB_TRUSTED_BAD;
	if (fwd != NULL &&
	    (rf = one(t, fwd, 1, hf, &nf, &cf, why)) == EB_TRUSTED_BAD)
		return EB_TRUSTED_BAD;
	if (xff != NULL && fwd != NULL &&
	    (rx != rf ||
	     (rx == EB_TRUSTED_FOUND &&
	      (cx->family != cf->family ||
	       memcmp(cx->addr, cf->addr, cx->family == 4 ? 4 : 16) != 0)))) {
		*why = "X-Forwarded-For and Forwarded name different clients";
		return EB_TRUSTED_BAD;
	}
	if ((c = cx != NULL ? cx : cf) == NULL)
		return EB_TRUSTED_NONE;
	end = cx != NULL ? hx + nx : hf + nf;
	if (inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, out,
	              (socklen_t)outlen) == NULL ||
	    (via != NULL &&
	     hops_text(c, (size_t)(end - c), via, vialen) == -1)) {
		*why = "no room for the address";
		return EB_TRUSTED_BAD;
	}
	return EB_TRUSTED_FOUND;
}
