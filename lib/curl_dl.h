/*
 * libcurl, loaded when the first HTTP handler is made instead of at every
 * start.  Linked the usual way, libcurl brings the TLS, SSH and RTMP
 * libraries it was built with (gnutls, p11-kit, nettle, gmp, libssh2 ...):
 * about 2.6 MB resident in every process and a few milliseconds of loading
 * in every jq-enqueue of a shell loop, for a feature most workers never use.
 * Only the calls pgjq makes are here; the types are libcurl's own.
 */
#ifndef PGJQ_CURL_DL_H
#define PGJQ_CURL_DL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

struct pgjq_curl {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *easy);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_unescape)(CURL *easy, const char *s, int len, int *outlen);
	void (*free)(void *p);
	time_t (*getdate)(const char *date, const time_t *unused);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
	CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
	CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
	CURLMcode (*multi_cleanup)(CURLM *multi);
	CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int ev, int *running);
	CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
};

/* Filled in by pgjq_curl_load; all NULL before. */
extern struct pgjq_curl pgjq_curl;

/*
 * Loads libcurl (once; later calls return at once).  False, with the
 * reason in err, if the library or one of its functions is missing.
 */
bool pgjq_curl_load(char *err, size_t errlen);

#endif
