# Shared by tests/run, examples/demo and bench/: install what the build
# needs (as root, from Debian's packages, only what is missing), then
# configure and build out of tree.  Source it; it defines functions only.

PGJQ_PACKAGES="build-essential autoconf automake libtool pkg-config libpq-dev
libjansson-dev libcurl4-openssl-dev postgresql pgbouncer mandoc procps prometheus cron"

setup_say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# Installs the missing packages, or says which are missing when not root.
setup_packages() {
	missing=
	for p in $PGJQ_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		setup_say "cannot install$missing: no apt-get; install them by hand"
		return 1
	fi
	if [ "$(id -u)" != 0 ]; then
		setup_say "missing packages:$missing"
		setup_say "run as root, or: sudo apt-get install$missing"
		return 1
	fi
	setup_say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2 && apt-get install -y -qq $missing >&2
}

# setup_build SRCDIR BUILDDIR [CONFIGURE-ARGS...]: configure (once) and make.
setup_build() {
	src=$1 build=$2
	shift 2
	if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] ||
	    [ "$src/Makefile.am" -nt "$src/Makefile.in" ]; then
		(cd "$src" && autoreconf -fi) >&2 || return 1
	fi
	mkdir -p "$build"
	if [ ! -f "$build/Makefile" ] || [ "$src/configure" -nt "$build/Makefile" ]; then
		(cd "$build" && "$src/configure" -q "$@") >&2 || return 1
	fi
	make -C "$build" -j"$(nproc 2>/dev/null || echo 2)" >&2
}
