/*
 * httpget.c - the probe's HTTP(S) GET over libcurl (see httpget.h).
 *
 * One easy handle per probe, so the second request reuses the first one's
 * connection (and TLS session). The deadline is absolute: each transfer gets
 * what is left of it, so a probe never outlives --timeout however many
 * requests it makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "httpget.h"

/* A metrics page is a few KiB; anything this big is not the daemon. */
#define HTTPGET_MAX_REPLY (4 * 1024 * 1024)

struct httpget {
	CURL *curl;
	CURLU *url;
	char *base_path;    /* the URL's path without a trailing '/', may be "" */
	const char *cacert; /* for messages; NULL: the system's CAs */
	long long deadline_ms;
	char errbuf[CURL_ERROR_SIZE];
};

struct httpget_buf {
	char *data;
	size_t len;
	bool too_big;
};

static size_t httpget_write(char *ptr, size_t size, size_t nmemb, void *arg);
static long long httpget_now_ms(void);
static bool httpget_set_url(struct httpget *h, const char *url, char *err, size_t errlen);

struct httpget *httpget_new(const char *base_url, const char *cacert, long timeout_ms, char *err,
                            size_t errlen)
{
	struct httpget *h;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "libcurl cannot start");
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->deadline_ms = httpget_now_ms() + timeout_ms;
	h->cacert = cacert;
	h->curl = curl_easy_init();
	h->url = curl_url();
	if (h->curl == NULL || h->url == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!httpget_set_url(h, base_url, err, errlen))
		goto fail;
	/* Only what a probe of an HTTP API needs: no other protocol even on a
	 * redirect (none is followed anyway), no proxy from http_proxy and
	 * friends (the daemon is reached directly; a proxy would answer for
	 * it), no signals (the timeout is libcurl's own clock). */
	if (curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_NOPROXY, "*") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "certreg-admin check") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTPGET_MAX_REPLY) !=
	        CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, httpget_write) != CURLE_OK) {
		snprintf(err, errlen, "libcurl lacks an option the probe needs (HTTP, HTTPS)");
		goto fail;
	}
	if (cacert != NULL && curl_easy_setopt(h->curl, CURLOPT_CAINFO, cacert) != CURLE_OK) {
		snprintf(err, errlen, "libcurl has no TLS: --cacert cannot be used");
		goto fail;
	}
	return h;
fail:
	httpget_free(h);
	return NULL;
}

enum httpget_result httpget_fetch(struct httpget *h, const char *path, int *status, char **body,
                                  char *err, size_t errlen)
{
	struct httpget_buf buf = {0};
	size_t plen = strlen(h->base_path) + strlen(path) + 1;
	char *full = malloc(plen);
	long left = (long)(h->deadline_ms - httpget_now_ms());
	long code = 0;
	CURLcode rc;

	if (full == NULL) {
		snprintf(err, errlen, "out of memory");
		return HTTPGET_PROBE_ERROR;
	}
	snprintf(full, plen, "%s%s", h->base_path, path);
	if (curl_url_set(h->url, CURLUPART_PATH, full, 0) != CURLUE_OK) {
		free(full);
		snprintf(err, errlen, "path %s not usable in the URL", path);
		return HTTPGET_PROBE_ERROR;
	}
	free(full);
	if (left <= 0) {
		snprintf(err, errlen, "timed out");
		return HTTPGET_NO_ANSWER;
	}
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_CURLU, h->url);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &buf);
	rc = curl_easy_perform(h->curl);
	if (rc != CURLE_OK) {
		const char *why = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(rc);

		if (rc == CURLE_PEER_FAILED_VERIFICATION)
			snprintf(err, errlen, "server certificate not trusted by %s (%s)",
			         h->cacert != NULL ? h->cacert : "the system's CAs", why);
		else
			snprintf(err, errlen, "%s", why);
		free(buf.data);
		if (buf.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
			snprintf(err, errlen, "reply larger than %d bytes", HTTPGET_MAX_REPLY);
			return HTTPGET_PROBE_ERROR;
		}
		/* The probe's own TLS setup, not the server's doing. */
		if (rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ENGINE_INITFAILED ||
		    rc == CURLE_OUT_OF_MEMORY || rc == CURLE_FAILED_INIT)
			return HTTPGET_PROBE_ERROR;
		return HTTPGET_NO_ANSWER;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
	if (buf.data == NULL) {
		buf.data = strdup("");
		if (buf.data == NULL) {
			snprintf(err, errlen, "out of memory");
			return HTTPGET_PROBE_ERROR;
		}
	}
	*status = (int)code;
	*body = buf.data;
	return HTTPGET_ANSWERED;
}

void httpget_free(struct httpget *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	curl_url_cleanup(h->url);
	free(h->base_path);
	free(h);
	curl_global_cleanup();
}

/* Checks the base URL's scheme and shape; keeps its path for httpget_fetch. */
static bool httpget_set_url(struct httpget *h, const char *url, char *err, size_t errlen)
{
	char *scheme = NULL, *path = NULL, *query = NULL, *frag = NULL;
	bool ok = false;
	size_t n;

	if (curl_url_set(h->url, CURLUPART_URL, url, 0) != CURLUE_OK) {
		snprintf(err, errlen, "URL \"%s\" is not a URL (want http[s]://host[:port][/path])",
		         url);
		return false;
	}
	if (curl_url_get(h->url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		snprintf(err, errlen, "URL \"%s\": only http:// and https:// URLs are supported",
		         url);
		goto out;
	}
	if (curl_url_get(h->url, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(h->url, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		snprintf(err, errlen, "URL \"%s\": query strings are not supported", url);
		goto out;
	}
	if (curl_url_get(h->url, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "URL \"%s\": no path", url);
		goto out;
	}
	n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		n--;
	h->base_path = strndup(path, n);
	if (h->base_path == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ok = true;
out:
	curl_free(scheme);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	return ok;
}

/* Collects the body, refusing more than HTTPGET_MAX_REPLY (libcurl's own
 * limit only applies when the server announces a length). */
static size_t httpget_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct httpget_buf *b = arg;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > HTTPGET_MAX_REPLY) {
		b->too_big = true;
		return 0;
	}
	grown = realloc(b->data, b->len + n + 1);
	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static long long httpget_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
