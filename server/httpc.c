/*
 * httpc.c - libcurl's multi interface on libevent (see httpc.h).
 *
 * curl tells which sockets to watch (httpc_socket_cb) and when to call it
 * back without activity (httpc_timer_cb); each event hands the socket back
 * with curl_multi_socket_action, and finished transfers are collected
 * after every action (httpc_collect). A callback may start new requests:
 * it runs after curl has returned, never inside one of curl's callbacks.
 */
#include "httpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct httpc_req {
	struct httpc *c;
	CURL *easy;
	struct curl_slist *headers;
	unsigned char *body;
	size_t len, cap, max;
	char error[CURL_ERROR_SIZE];
	httpc_done_cb cb;
	void *arg;
	struct httpc_req *prev, *next;
};

struct httpc {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct httpc_req *reqs; /* in flight */
};

static int httpc_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
static int httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp);
static void httpc_event_cb(evutil_socket_t fd, short what, void *arg);
static void httpc_timeout_cb(evutil_socket_t fd, short what, void *arg);
static size_t httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static void httpc_collect(struct httpc *c);
static void httpc_req_free(struct httpc_req *r);

struct httpc *httpc_new(struct event_base *base)
{
	static bool curl_ready;
	struct httpc *c;

	/* Once per process: each worker is single-threaded. */
	if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return NULL;
	curl_ready = true;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->base = base;
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, httpc_timeout_cb, c);
	if (c->multi == NULL || c->timer == NULL)
		goto fail;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
fail:
	httpc_free(c);
	return NULL;
}

void httpc_free(struct httpc *c)
{
	if (c == NULL)
		return;
	while (c->reqs != NULL)
		httpc_req_free(c->reqs);
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

bool httpc_request(struct httpc *c, const char *url, const char *content_type, const void *body,
                   size_t len, int timeout_ms, size_t max_response, httpc_done_cb cb, void *arg)
{
	struct httpc_req *r = calloc(1, sizeof(*r));
	char header[128];

	if (r == NULL)
		return false;
	r->c = c;
	r->cb = cb;
	r->arg = arg;
	r->max = max_response;
	r->easy = curl_easy_init();
	if (r->easy == NULL)
		goto fail;
	if (content_type != NULL) {
		snprintf(header, sizeof(header), "Content-Type: %s", content_type);
		r->headers = curl_slist_append(NULL, header);
		if (r->headers == NULL)
			goto fail;
	}
	if (curl_easy_setopt(r->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		goto fail;
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, httpc_write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "certregd/" CERTREG_VERSION);
	if (r->headers != NULL)
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	if (body != NULL) {
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)len);
		if (curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK)
			goto fail;
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK)
		goto fail;
	r->next = c->reqs;
	if (c->reqs != NULL)
		c->reqs->prev = r;
	c->reqs = r;
	return true;
fail:
	curl_slist_free_all(r->headers);
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	free(r);
	return false;
}

static int httpc_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct httpc *c = userp;
	struct event *ev = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ev != NULL) {
			event_free(ev);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	               ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (ev == NULL) {
		ev = event_new(c->base, s, kind, httpc_event_cb, c);
		if (ev == NULL)
			return -1; /* curl fails the transfer */
		curl_multi_assign(c->multi, s, ev);
	} else {
		event_del(ev);
		event_assign(ev, c->base, s, kind, httpc_event_cb, c);
	}
	return event_add(ev, NULL) == 0 ? 0 : -1;
}

static int httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc *c = userp;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(c->timer) == 0 ? 0 : -1;
	/* Even a 0 goes through the loop: curl may not be called from here. */
	return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

static void httpc_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;
	int running, action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	                      ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(c->multi, fd, action, &running);
	httpc_collect(c);
}

static void httpc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc *c = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_collect(c);
}

static size_t httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct httpc_req *r = userdata;
	size_t n = size * nmemb;

	if (n > r->max - r->len)
		return 0; /* larger than allowed: curl fails with a write error */
	if (r->len + n > r->cap) {
		size_t cap = r->cap == 0 ? 4096 : r->cap;
		unsigned char *p;

		while (cap < r->len + n)
			cap *= 2;
		p = realloc(r->body, cap);
		if (p == NULL)
			return 0;
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	return n;
}

/* Hands each finished transfer to its callback, then frees it. */
static void httpc_collect(struct httpc *c)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct httpc_req *r = NULL;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		else if (r->error[0] == '\0')
			snprintf(r->error, sizeof(r->error), "%s",
			         curl_easy_strerror(msg->data.result));
		/* Out of curl and off the list before the callback, which may
		 * start other requests. */
		curl_multi_remove_handle(c->multi, r->easy);
		if (r->prev != NULL)
			r->prev->next = r->next;
		else
			c->reqs = r->next;
		if (r->next != NULL)
			r->next->prev = r->prev;
		r->prev = r->next = NULL;
		r->cb(r->arg, status, r->body, r->len, status != 0 ? NULL : r->error);
		curl_easy_cleanup(r->easy);
		curl_slist_free_all(r->headers);
		free(r->body);
		free(r);
	}
}

/* A request still in flight, dropped without its callback. */
static void httpc_req_free(struct httpc_req *r)
{
	struct httpc *c = r->c;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	curl_multi_remove_handle(c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}
