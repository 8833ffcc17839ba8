#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "diag.h"
#include "sigpipe.h"
#include "tty.h"

bool
pgjq_tty_size(int fd, int *cols, int *rows)
{
	struct winsize ws;

	if (!isatty(fd) || ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return false;
	*cols = ws.ws_col;
	*rows = ws.ws_row > 0 ? ws.ws_row : 24;
	return true;
}

int
pgjq_tty_width(int fd)
{
	const char *env = getenv("COLUMNS");
	int cols, rows;
	long n;

	if (pgjq_tty_size(fd, &cols, &rows))
		return cols;
	if (env != NULL && (n = strtol(env, NULL, 10)) >= 20 && n <= 1000)
		return (int)n;
	return 80;
}

/* Length of the UTF-8 sequence at s, or 0 if it is not a valid one. */
static int
utf8_len(const unsigned char *s)
{
	int n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (int i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

int
pgjq_tty_put(struct pgjq_buf *b, const char *s, int width, bool one_line)
{
	const unsigned char *p = (const unsigned char *)s;
	int cols = 0, n;

	if (width <= 0)
		return 0;
	while (*p != '\0' && !(one_line && *p == '\n')) {
		/* Room for one more character, or for "..." if more follow. */
		if (cols == width - 3 && width >= 3) {
			const unsigned char *q = p;
			int rest = 0;

			while (*q != '\0' && !(one_line && *q == '\n') && rest <= 3) {
				q += (n = utf8_len(q)) > 0 ? n : 1;
				rest++;
			}
			if (rest > 3) {
				pgjq_buf_append(b, "...", 3);
				return cols + 3;
			}
		}
		if (cols == width)
			break;
		n = utf8_len(p);
		if (n == 0 || *p < 0x20 || *p == 0x7f || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			/* Control characters (C0, DEL, C1) would drive the terminal. */
			pgjq_buf_putc(b, *p == '\t' || *p == '\n' ? ' ' : '?');
			p += n > 0 ? n : 1;
		} else {
			pgjq_buf_append(b, p, (size_t)n);
			p += n;
		}
		cols++;
	}
	return cols;
}

void
pgjq_tty_pad(struct pgjq_buf *b, int n)
{
	for (; n > 0; n--)
		pgjq_buf_putc(b, ' ');
}

int
pgjq_tty_catch_signals(void)
{
	static const int sigs[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP};

	return pgjq_sigpipe_catch(sigs, sizeof sigs / sizeof sigs[0]);
}

int
pgjq_tty_signal(void)
{
	return pgjq_sigpipe_next();
}

void
pgjq_tty_die_by(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);
}

static bool screen_on;

void
pgjq_tty_enter(int fd)
{
	static const char on[] = "\033[?1049h\033[?25l\033[H\033[2J";

	if (write(fd, on, sizeof on - 1) > 0)
		screen_on = true;
}

void
pgjq_tty_leave(int fd)
{
	static const char off[] = "\033[?25h\033[?1049l";

	if (!screen_on)
		return;
	screen_on = false;
	if (write(fd, off, sizeof off - 1) < 0) {
		/* Nothing more can be done for a terminal that is gone. */
	}
}

void
pgjq_tty_flush(int fd, struct pgjq_buf *b)
{
	size_t off = 0;

	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	pgjq_buf_reset(b);
}
