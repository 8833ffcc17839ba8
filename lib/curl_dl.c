#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "curl_dl.h"

/* libcurl's soname has been libcurl.so.4 since 2006. */
#define LIBCURL_SONAME "libcurl.so.4"

struct pgjq_curl pgjq_curl;

#define SYMBOL(f) { "curl_" #f, offsetof(struct pgjq_curl, f) }
static const struct {
	const char *name;
	size_t offset;
} symbols[] = {
	SYMBOL(global_init), SYMBOL(global_cleanup), SYMBOL(easy_init),
	SYMBOL(easy_setopt), SYMBOL(easy_getinfo), SYMBOL(easy_cleanup),
	SYMBOL(easy_strerror), SYMBOL(easy_unescape), SYMBOL(free),
	SYMBOL(getdate), SYMBOL(slist_append), SYMBOL(slist_free_all),
	SYMBOL(multi_init), SYMBOL(multi_setopt), SYMBOL(multi_add_handle),
	SYMBOL(multi_remove_handle), SYMBOL(multi_cleanup),
	SYMBOL(multi_socket_action), SYMBOL(multi_info_read),
};

bool
pgjq_curl_load(char *err, size_t errlen)
{
	static struct pgjq_curl loaded;
	static bool done;
	void *lib;
	size_t i;

	if (done)
		return true;
	/* Never closed: libcurl keeps global state until the process ends. */
	lib = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(err, errlen, "cannot load %s: %s", LIBCURL_SONAME, dlerror());
		return false;
	}
	for (i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
		void *sym = dlsym(lib, symbols[i].name);

		if (sym == NULL) {
			snprintf(err, errlen, "%s has no %s", LIBCURL_SONAME, symbols[i].name);
			return false;
		}
		/* POSIX makes a data pointer from dlsym convertible to a function pointer. */
		memcpy((char *)&loaded + symbols[i].offset, &sym, sizeof sym);
	}
	pgjq_curl = loaded;
	done = true;
	return true;
}
