#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "sigpipe.h"

volatile sig_atomic_t pgjq_sigpipe_urgent;

static int fds[2] = {-1, -1};
static volatile sig_atomic_t stops;

static void
on_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;

	if (sig != SIGCHLD && sig != SIGWINCH && ++stops >= 2)
		pgjq_sigpipe_urgent = 1;
	if (write(fds[1], &c, 1) < 0) {
		/* The pipe is full: the loop has plenty to wake for already. */
	}
	errno = saved;
}

int
pgjq_sigpipe_catch(const int *sigs, size_t n)
{
	struct sigaction sa;

	if (fds[0] < 0) {
		if (pipe(fds) != 0)
			pgjq_die(PGJQ_EX_SOFTWARE, "pipe: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
			fcntl(fds[i], F_SETFD, FD_CLOEXEC);
		}
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < n; i++)
		sigaction(sigs[i], &sa, NULL);
	return fds[0];
}

int
pgjq_sigpipe_next(void)
{
	unsigned char c;

	if (fds[0] < 0 || read(fds[0], &c, 1) != 1)
		return 0;
	return c;
}
