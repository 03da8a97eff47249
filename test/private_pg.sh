# A private copy of the host's PostgreSQL installation, for a test that
# installs a build of its own (test/sanitize.sh: the sanitized library)
# while other tests run against the system's: source it, then
#	private_pg DIR
# copies PostgreSQL's binaries, libraries, share and server headers into
# DIR (Debian's layout relocates: pg_config and the server find their
# files relative to their own location) and exports PATH, PG_CONFIG and
# PG_BIN so that make install, make installcheck and test/cluster.sh use
# the copy.  The wgpeer files of the system's copy come along; the caller
# installs its own over them.

private_pg() {
	local dir=$1 major
	major=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	mkdir -p "$dir/lib/postgresql" "$dir/share/postgresql" "$dir/include"
	cp -a "/usr/lib/postgresql/$major" "$dir/lib/postgresql/"
	cp -a "/usr/share/postgresql/$major" "$dir/share/postgresql/"
	cp -a /usr/include/postgresql "$dir/include/"
	PG_BIN=$dir/lib/postgresql/$major/bin
	PG_CONFIG=$PG_BIN/pg_config
	PATH=$PG_BIN:$PATH
	export PG_BIN PG_CONFIG PATH
}
