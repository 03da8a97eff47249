/*
 * export.c
 *		The apply worker keeps WireGuard config files on disk, so that an
 *		operator can restore an interface while PostgreSQL is down.
 *
 * When wgpeer.export_dir is set, the directory holds for each registered
 * interface <interface>.conf in the `wg setconf` format (its private key
 * when the database holds it, its listen port, and one [Peer] per peer in
 * state creating or active, its tunnel addresses and routes as AllowedIPs:
 * the peers the database wants on the interface, the same set
 * reconciliation enforces; an AmneziaWG interface's file carries its
 * parameters too, for `awg syncconf` or `awg-quick up`).  When
 * wgpeer.export_client_configs is on, the subdirectory <interface>/ holds
 * one client config per live peer, <config_name>.conf, rendered exactly as
 * wg_peer_config() renders it; a second live peer of the interface with
 * the same config_name gets <config_name>@<first 8 hex digits of its
 * peer_id>.conf (config names cannot contain '@').  A file goes when its
 * peer is revoked or expires, its interface is unregistered, or a
 * one-time config link handed its private key out and the server forgot
 * it (the client then holds the only copy, not this directory).
 *
 * Every file is written with wg_atomic_write() (mode 0600, temporary file,
 * fsync, rename, fsync of the directory) and only when its content
 * changed: the worker remembers a hash of each file it keeps, and of the
 * row each client file was rendered from, so a pass in which nothing
 * changed renders no client config and touches no file.  A pass runs when
 * the peer or interface tables were written to (their cumulative tuple
 * counters moved), when the settings change, every
 * wgpeer.reconcile_interval as a safety net, and 10 seconds after a
 * failure.  After a restart or a change of settings, the first pass
 * compares with what is on disk instead of rewriting, and collects the
 * client files and stale temporary files of the registered interfaces, so
 * files of peers revoked meanwhile are removed too.  Nothing else in the
 * directory is touched.
 *
 * A pass first works out which files are wanted, then removes the files
 * no longer wanted, then writes what changed: a removal never waits for a
 * write, so a revoked peer's files go even on a full disk (and the space
 * they free may be what the writes need).  No file may outlive what the
 * database wants: when a client file cannot be rewritten the old one is
 * removed (it may hold the private key of a peer revoked or renewed
 * since), and when a server file cannot be, the old one is removed unless
 * each of its [Peer] sections is also in the new one (loaded with `wg
 * setconf`, a stale server file would let revoked peers back in; one that
 * only lacks new peers is kept).
 *
 * Errors never stop the worker: a file that cannot be written or a row
 * that cannot be rendered makes the pass fail for its interface, the
 * first such error is kept in wgpeer.worker_state.export_error (shown by
 * interface_status), and the pass is retried.  An interface gets one
 * WARNING, with a hint, when its export starts failing and one LOG when
 * it is up to date again, not one per pass.
 */
#include "worker/worker.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/validate.h"

/* After a failed pass, try again this much later. */
#define EXPORT_RETRY_MS 10000

/*
 * Most files written or removed per pass (each costs two fsyncs), so that
 * a first export of thousands of client configs does not hold up the
 * apply worker: the rest follow in the next loops, about a second apart.
 */
#define EXPORT_WRITES_PER_PASS 500

/* Longest relative path: "<15>/<15>@<8>.conf" and some room. */
#define EXPORT_PATH_LEN 64

/* One file the worker keeps, or found and may have to remove. */
typedef struct ExportFile
{
	char		path[EXPORT_PATH_LEN];	/* hash key, relative to export_dir */
	uint64		source;			/* hash of the row a client file was
								 * rendered from; 0: unknown */
	uint64		content;		/* hash of the content on disk; 0: unknown */
	bool		wanted;			/* does this pass want it? */
} ExportFile;

/* The files of export_dir as the worker last left them. */
static HTAB *files = NULL;
static char *files_dir = NULL;	/* the export_dir they are in */
static bool files_clients = false;	/* export_client_configs then */
static bool scan_pending = true;	/* collect what is on disk first */
static int64 last_fingerprint = -1;

/* A failure in the current pass: the next one comes after a delay. */
static bool pass_failed = false;

/* Writes the current pass may still do; when spent, the rest wait. */
static int	writes_left = 0;
static bool more_pending = false;

/*
 * A file the current pass has to write: a server file with its content,
 * or a client file rendered only when its turn comes.
 */
typedef struct PendingWrite
{
	char	   *rel;			/* relative to export_dir */
	char	   *ifname;			/* the interface it belongs to */
	bool		client;			/* a client file in <ifname>/ */
	char	   *data;			/* a server file's content */
	size_t		len;
	pg_uuid_t	peer_id;		/* a client file's peer */
	uint64		source;			/* a client file's row hash */
} PendingWrite;

/* The first failure of the pass for one interface. */
typedef struct ExportFailure
{
	char	   *ifname;			/* NULL: every interface (the directory) */
	char	   *message;
	const char *hint;
} ExportFailure;

/* The current pass's writes and failures, in the pass's memory. */
static List *pending = NIL;
static List *failures = NIL;

/* The hint for a file that cannot be written or removed. */
static const char *const file_hint =
"wgpeer.export_dir must be a directory the PostgreSQL server's operating "
"system user can write, or whose parent it can write, on a file system "
"with free space.";

/*
 * A 64-bit hash of data, never 0 (which means "unknown").
 */
static uint64
hash_of(const char *data, size_t len)
{
	uint64		h = hash_bytes_extended((const unsigned char *) data, (int) len, 0);

	return h == 0 ? 1 : h;
}

/*
 * Forget every file: export was turned off, or moved elsewhere.  Files
 * already written stay where they are.
 */
static void
forget_files(void)
{
	if (files)
		hash_destroy(files);
	files = NULL;
	if (files_dir)
		pfree(files_dir);
	files_dir = NULL;
	scan_pending = true;
	last_fingerprint = -1;
}

/*
 * Start over for the current settings: an empty table, a scan of the
 * directory, and a pass at once.
 */
static void
start_over(void)
{
	HASHCTL		ctl;

	forget_files();
	ctl.keysize = EXPORT_PATH_LEN;
	ctl.entrysize = sizeof(ExportFile);
	files = hash_create("wgpeer exported files", 256, &ctl,
						HASH_ELEM | HASH_STRINGS);
	files_dir = MemoryContextStrdup(TopMemoryContext, wgpeer_export_dir);
	files_clients = wgpeer_export_client_configs;
}

/*
 * Note a failure of the pass for ifname (NULL: every interface).  Only
 * the first one of each interface is kept; nothing is logged here: the
 * pass's end records each interface's state, and warns once when it
 * starts failing (record_export_state).
 */
static void
note_failure(const char *ifname, const char *hint, const char *fmt,...)
			pg_attribute_printf(3, 4);

static void
note_failure(const char *ifname, const char *hint, const char *fmt,...)
{
	ExportFailure *f;
	ListCell   *lc;
	va_list		ap;
	StringInfoData buf;

	pass_failed = true;
	foreach(lc, failures)
	{
		f = lfirst(lc);
		if (f->ifname == NULL || (ifname && strcmp(f->ifname, ifname) == 0))
			return;
	}
	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(&buf, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	f = palloc0(sizeof(ExportFailure));
	f->ifname = ifname ? pstrdup(ifname) : NULL;
	f->message = buf.data;
	f->hint = hint;
	failures = lappend(failures, f);
}

/* The failure noted for ifname in this pass, or NULL. */
static ExportFailure *
failure_of(const char *ifname)
{
	ListCell   *lc;

	foreach(lc, failures)
	{
		ExportFailure *f = lfirst(lc);

		if (f->ifname == NULL || strcmp(f->ifname, ifname) == 0)
			return f;
	}
	return NULL;
}

/* The interface a file of export_dir belongs to, from its path. */
static char *
iface_of(const char *rel)
{
	const char *slash = strchr(rel, '/');
	size_t		len = slash ? (size_t) (slash - rel) : strlen(rel) - strlen(".conf");

	return pnstrdup(rel, len);
}

/* The absolute path of a file of export_dir, in the current context. */
static char *
full_path(const char *rel)
{
	return psprintf("%s/%s", wgpeer_export_dir, rel);
}

/*
 * Is a name from the database safe as a file name (no '/', no ".."), and
 * short enough?  Rows edited by hand are a failure of their interface.
 */
static bool
safe_name(const char *ifname, const char *name, const char *why,
		  const char *what)
{
	if (why == NULL)
		return true;
	note_failure(ifname, "Correct the row in the wgpeer tables.",
				 "wgpeer does not export %s \"%s\": %s", what, name, why);
	return false;
}

/*
 * The file rel is wanted by this pass.  When what is on disk may differ
 * from content (hash; 0 for a client file not rendered yet), the caller
 * queues a write: returns the entry then, NULL when the file is current.
 */
static ExportFile *
want_file(const char *rel, uint64 content, const char *data, size_t len)
{
	bool		found;
	ExportFile *f = hash_search(files, rel, HASH_ENTER, &found);

	if (!found)
		f->source = f->content = 0;
	f->wanted = true;
	if (content != 0 && f->content == content)
		return NULL;
	if (content != 0 && f->content == 0 &&
		wg_atomic_unchanged(full_path(rel), data, len) == 1)
	{
		f->content = content;
		return NULL;
	}
	return f;
}

/*
 * First pass after a restart or a change of settings: remove the stale
 * temporary files of this interface's files, and note its client files
 * (every .conf file in <interface>/) so that those no longer wanted go.
 */
static void
scan_interface(const char *ifname)
{
	char	   *target = psprintf("%s.conf", ifname);
	char	   *subdir = full_path(ifname);
	DIR		   *dir;
	struct dirent *de;

	dir = AllocateDir(wgpeer_export_dir);
	while (dir && (de = ReadDirExtended(dir, wgpeer_export_dir, WARNING)) != NULL)
		if (wg_atomic_is_temp_of(de->d_name, target))
			(void) wg_atomic_remove(full_path(de->d_name));
	if (dir)
		FreeDir(dir);

	dir = AllocateDir(subdir);
	while (dir && (de = ReadDirExtended(dir, subdir, WARNING)) != NULL)
	{
		char	   *rel = psprintf("%s/%s", ifname, de->d_name);
		size_t		len = strlen(de->d_name);
		struct stat st;

		if (wg_atomic_is_temp_of(de->d_name, NULL))
			(void) wg_atomic_remove(full_path(rel));
		else if (len > 5 && strcmp(de->d_name + len - 5, ".conf") == 0 &&
				 strlen(rel) < EXPORT_PATH_LEN &&
				 lstat(full_path(rel), &st) == 0 && S_ISREG(st.st_mode))
		{
			bool		found;
			ExportFile *f = hash_search(files, rel, HASH_ENTER, &found);

			if (!found)
			{
				f->source = f->content = 0;
				f->wanted = false;
			}
		}
	}
	if (dir)
		FreeDir(dir);
}

/*
 * Plan <interface>.conf for every registered interface: render it, and
 * queue a write when it changed.
 */
static void
plan_servers(void)
{
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr peer_plan;
	SPITupleTable *ifaces;
	uint64		n_ifaces;

	wgpeer_exec(&iface_plan,
				"SELECT name, private_key, listen_port,"
				" coalesce(persistent_keepalive, 0),"
		/* AmneziaWG (0.3), read so under older schemas too */
				" nullif(to_jsonb(i) -> 'awg', 'null')"
				" FROM wgpeer.interface i"
				" WHERE node = current_setting('wgpeer.node') ORDER BY name",
				0, NULL, NULL, NULL);
	ifaces = SPI_tuptable;
	n_ifaces = SPI_processed;
	for (uint64 r = 0; r < n_ifaces; r++)
	{
		HeapTuple	tup = ifaces->vals[r];
		TupleDesc	desc = ifaces->tupdesc;
		char	   *ifname = SPI_getvalue(tup, desc, 1);
		int			keepalive = atoi(SPI_getvalue(tup, desc, 4));
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(ifname)};
		wg_server_config cfg;
		wg_awg		awg;
		bool		no_awg;
		Datum		awg_json = SPI_getbinval(tup, desc, 5, &no_awg);
		wg_server_peer *peers;
		uint64		n_peers;
		char	   *rel;
		char	   *buf;
		int			len;

		if (!safe_name(ifname, ifname, wg_check_ifname(ifname), "interface"))
			continue;
		if (scan_pending)
			scan_interface(ifname);

		wgpeer_exec(&peer_plan,
					"SELECT public_key, preshared_key, host(address) || '/32',"
					" host(address6) || '/128', persistent_keepalive,"
					" array_to_string(routes, ', ')"
					" FROM wgpeer.peer"
					" WHERE interface = $1 AND status IN ('creating', 'active')"
					" ORDER BY address, public_key",
					1, types, values, NULL);
		n_peers = SPI_processed;
		peers = palloc0(sizeof(wg_server_peer) * (n_peers + 1));
		for (uint64 p = 0; p < n_peers; p++)
		{
			HeapTuple	ptup = SPI_tuptable->vals[p];
			TupleDesc	pdesc = SPI_tuptable->tupdesc;

			peers[p].public_key = SPI_getvalue(ptup, pdesc, 1);
			peers[p].preshared_key = SPI_getvalue(ptup, pdesc, 2);
			peers[p].address = SPI_getvalue(ptup, pdesc, 3);
			peers[p].address6 = SPI_getvalue(ptup, pdesc, 4);
			peers[p].routes = SPI_getvalue(ptup, pdesc, 6);
			peers[p].persistent_keepalive = SPI_getvalue(ptup, pdesc, 5) ?
				atoi(SPI_getvalue(ptup, pdesc, 5)) : keepalive;
		}
		SPI_freetuptable(SPI_tuptable);
		cfg.interface = ifname;
		cfg.private_key = SPI_getvalue(tup, desc, 2);
		cfg.listen_port = atoi(SPI_getvalue(tup, desc, 3));
		cfg.peers = peers;
		cfg.n_peers = (int) n_peers;
		cfg.awg = NULL;
		if (!no_awg)
		{
			wgpeer_awg_effective(DatumGetJsonbP(awg_json), NULL, &awg);
			cfg.awg = &awg;
		}

		rel = psprintf("%s.conf", ifname);
		len = wg_server_config_render(&cfg, NULL, 0);
		if (len < 0)
		{
			/* the last good file stays: it lists no peer this one would not */
			ExportFile *f = hash_search(files, rel, HASH_FIND, NULL);

			if (f)
				f->wanted = true;
			note_failure(ifname, "Correct the interface's or its peers' rows "
						 "in the wgpeer tables.",
						 "wgpeer cannot export interface \"%s\": a stored "
						 "field is empty or spans lines", ifname);
			continue;
		}
		buf = palloc(len + 1);
		wg_server_config_render(&cfg, buf, len + 1);
		if (want_file(rel, hash_of(buf, len), buf, len) != NULL)
		{
			PendingWrite *w = palloc0(sizeof(PendingWrite));

			w->rel = rel;
			w->ifname = ifname;
			w->data = buf;
			w->len = len;
			pending = lappend(pending, w);
		}
	}
}

/*
 * Plan <interface>/<config_name>.conf for every live peer: queue a write
 * (rendered later) for each whose row, or interface, changed since its
 * file was written.
 */
static void
plan_clients(void)
{
	static SPIPlanPtr plan;
	SPITupleTable *rows;
	uint64		n;

	wgpeer_exec(&plan,
				"SELECT p.peer_id, p.interface, p.config_name,"
				"  row(p.*, i.*)::text,"
				"  row_number() OVER (PARTITION BY p.interface, p.config_name"
				"                     ORDER BY p.created_at, p.peer_id) > 1,"
				"  left(replace(p.peer_id::text, '-', ''), 8)"
				" FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface"
				" WHERE p.status IN ('creating', 'active')"
				"   AND i.node = current_setting('wgpeer.node')"
				/* a key a config link handed out stays off the disk too */
				"   AND p.private_key_forgotten_at IS NULL",
				0, NULL, NULL, NULL);
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = rows->vals[r];
		TupleDesc	desc = rows->tupdesc;
		bool		isnull;
		Datum		peer_id = SPI_getbinval(tup, desc, 1, &isnull);
		char	   *ifname = SPI_getvalue(tup, desc, 2);
		char	   *name = SPI_getvalue(tup, desc, 3);
		char	   *row = SPI_getvalue(tup, desc, 4);
		bool		duplicate = strcmp(SPI_getvalue(tup, desc, 5), "t") == 0;
		uint64		source = hash_of(row, strlen(row));
		ExportFile *f;
		PendingWrite *w;
		char	   *rel;

		if (!safe_name(ifname, ifname, wg_check_ifname(ifname), "interface") ||
			!safe_name(ifname, name, wg_check_config_name(name), "config_name"))
			continue;
		rel = duplicate ?
			psprintf("%s/%s@%s.conf", ifname, name, SPI_getvalue(tup, desc, 6)) :
			psprintf("%s/%s.conf", ifname, name);

		f = want_file(rel, 0, NULL, 0);
		if (f->source == source && f->content != 0)
			continue;
		w = palloc0(sizeof(PendingWrite));
		w->rel = rel;
		w->ifname = ifname;
		w->client = true;
		memcpy(&w->peer_id, DatumGetUUIDP(peer_id), sizeof(pg_uuid_t));
		w->source = source;
		pending = lappend(pending, w);
	}
}

/*
 * The [Peer] sections of a server file, as they begin: at each
 * "\n[Peer]\n", and each running to the next one or the end.  Calls fn
 * for each; stops when it returns false, and returns what it returned
 * last.
 */
static bool
each_peer_section(const char *data, size_t len,
				  bool (*fn) (void *arg, const char *section, size_t len),
				  void *arg)
{
	static const char marker[] = "\n[Peer]\n";
	const char *end = data + len;
	const char *p = memmem(data, len, marker, sizeof(marker) - 1);

	while (p != NULL)
	{
		const char *next = memmem(p + 1, end - p - 1, marker, sizeof(marker) - 1);
		const char *stop = next ? next : end;

		if (!fn(arg, p, stop - p))
			return false;
		p = next;
	}
	return true;
}

/* each_peer_section callback: add the section's hash to the set arg. */
static bool
add_section(void *arg, const char *section, size_t len)
{
	uint64		h = hash_of(section, len);

	(void) hash_search((HTAB *) arg, &h, HASH_ENTER, NULL);
	return true;
}

/* each_peer_section callback: is the section's hash in the set arg? */
static bool
has_section(void *arg, const char *section, size_t len)
{
	uint64		h = hash_of(section, len);

	return hash_search((HTAB *) arg, &h, HASH_FIND, NULL) != NULL;
}

/*
 * Does the server file at path grant nothing that data (its new content)
 * does not: is each of its [Peer] sections, word for word, one of data's?
 * Then keeping it while data cannot be written lets no peer in that the
 * database no longer wants (it may lack new peers).  A file that cannot
 * be read is not known to be safe.
 */
static bool
old_server_file_safe(const char *path, const char *data, size_t len)
{
	HASHCTL		ctl;
	HTAB	   *set;
	FILE	   *fp;
	StringInfoData old;
	char		chunk[8192];
	size_t		n;
	bool		safe;

	if ((fp = AllocateFile(path, "r")) == NULL)
		return errno == ENOENT;
	initStringInfo(&old);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		appendBinaryStringInfo(&old, chunk, n);
	safe = !ferror(fp);
	FreeFile(fp);
	if (!safe)
		return false;
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	ctl.hcxt = CurrentMemoryContext;
	set = hash_create("wgpeer server file sections", 1024, &ctl,
					  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	(void) each_peer_section(data, len, add_section, set);
	safe = each_peer_section(old.data, old.len, has_section, set);
	hash_destroy(set);
	pfree(old.data);
	return safe;
}

/*
 * w could not be written (rc): what is on disk must not outlive what the
 * database wants.  A client file goes (it may hold a private key of a
 * peer revoked or renewed since), and so does a server file that lists a
 * peer, or an allowed IP, the new one does not (loaded, it would let a
 * revoked peer back in): a missing file is safer than such a one.
 */
static void
write_failed(PendingWrite *w, const char *path, int rc)
{
	int			rm;

	note_failure(w->ifname, file_hint, "could not write \"%s\": %s", path,
				 strerror(-rc));
	if (!w->client && old_server_file_safe(path, w->data, w->len))
		return;
	if ((rm = wg_atomic_remove(path)) < 0)
		note_failure(w->ifname, file_hint, "could not remove \"%s\": %s",
					 path, strerror(-rm));
	else if (!w->client)
		ereport(LOG,
				(errmsg("wgpeer removed \"%s\": it lists peers the database no "
						"longer wants on \"%s\", and its new version could not "
						"be written", path, w->ifname)));
}

/*
 * Write one pending file, rendering a client file first (a file whose
 * content turns out unchanged, on disk too, is not written); on failure,
 * leave no stale file (write_failed).  Returns whether it wrote or tried
 * to.
 */
static bool
write_pending(PendingWrite *w)
{
	ExportFile *f = hash_search(files, w->rel, HASH_FIND, NULL);
	char	   *path = full_path(w->rel);
	char	   *subdir = w->client ? full_path(w->ifname) : NULL;
	uint64		content;
	int			rc;

	if (w->client)
	{
		w->data = wgpeer_render_peer_config(&w->peer_id);
		w->len = strlen(w->data);
		SPI_freetuptable(SPI_tuptable);
	}
	content = hash_of(w->data, w->len);
	if (f->content == content ||
		(f->content == 0 && wg_atomic_unchanged(path, w->data, w->len) == 1))
	{
		f->content = content;
		f->source = w->source;
		return false;
	}
	f->content = 0;
	if ((subdir && (rc = wg_atomic_mkdir(subdir)) < 0) ||
		(rc = wg_atomic_write(path, w->data, w->len)) < 0)
	{
		write_failed(w, path, rc);
		return true;
	}
	f->content = content;
	f->source = w->source;
	return true;
}

/*
 * One pass: plan every wanted file, then remove every file no longer
 * wanted, then write what changed.  Removals come first and never depend
 * on a write: a revoked peer's files go even when nothing can be written
 * (and what they free may be what the writes need).  Inside a worker
 * transaction.
 */
static void
export_all(void)
{
	HASH_SEQ_STATUS seq;
	ExportFile *f;
	ListCell   *lc;
	int			rc;

	if ((rc = wg_atomic_mkdir(wgpeer_export_dir)) < 0)
	{
		note_failure(NULL, file_hint, "could not create directory \"%s\": %s",
					 wgpeer_export_dir, strerror(-rc));
		return;
	}
	hash_seq_init(&seq, files);
	while ((f = hash_seq_search(&seq)) != NULL)
		f->wanted = false;

	plan_servers();
	/* a node holds no client private keys: no client configs there */
	if (wgpeer_export_client_configs && wgpeer_served_node()[0] == '\0')
		plan_clients();
	scan_pending = false;

	hash_seq_init(&seq, files);
	while ((f = hash_seq_search(&seq)) != NULL)
	{
		if (f->wanted)
			continue;
		if (writes_left-- <= 0)
			more_pending = true;
		else if ((rc = wg_atomic_remove(full_path(f->path))) < 0)
			note_failure(iface_of(f->path), file_hint,
						 "could not remove \"%s\": %s", full_path(f->path),
						 strerror(-rc));
		else
			(void) hash_search(files, f->path, HASH_REMOVE, NULL);
	}

	foreach(lc, pending)
	{
		if (writes_left <= 0)
		{
			more_pending = true;
			break;
		}
		if (write_pending(lfirst(lc)))
			writes_left--;
	}
}

/*
 * Record each interface's export state in wgpeer.worker_state after a
 * pass: the first failure of the pass, or none.  An interface whose files
 * start failing gets one WARNING, and one LOG when they are up to date
 * again, however many passes fail in between (worker_state holds the
 * state, so a restarted worker does not warn again).
 */
static void
record_export_state(void)
{
	static SPIPlanPtr list_plan;
	static SPIPlanPtr set_plan;
	SPITupleTable *rows;
	uint64		n;

	wgpeer_exec(&list_plan,
				"SELECT i.name, s.export_error FROM wgpeer.interface i"
				" LEFT JOIN wgpeer.worker_state s ON s.interface = i.name"
				" WHERE i.node = current_setting('wgpeer.node') ORDER BY i.name",
				0, NULL, NULL, NULL);
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 r = 0; r < n; r++)
	{
		char	   *ifname = SPI_getvalue(rows->vals[r], rows->tupdesc, 1);
		char	   *before = SPI_getvalue(rows->vals[r], rows->tupdesc, 2);
		ExportFailure *now = failure_of(ifname);
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2];
		char		nulls[2] = {' ', now ? ' ' : 'n'};

		if (before == NULL ? now == NULL :
			(now != NULL && strcmp(before, now->message) == 0))
			continue;
		values[0] = CStringGetTextDatum(ifname);
		values[1] = now ? CStringGetTextDatum(now->message) : (Datum) 0;
		wgpeer_exec(&set_plan,
					"INSERT INTO wgpeer.worker_state AS s"
					"  (interface, export_error, export_error_at)"
					" VALUES ($1, $2, CASE WHEN $2 IS NOT NULL THEN now() END)"
					" ON CONFLICT (interface, node) DO UPDATE"
					" SET export_error = $2,"
					"     export_error_at = CASE WHEN $2 IS NOT NULL"
					"       THEN coalesce(s.export_error_at, now()) END",
					2, types, values, nulls);
		if (before == NULL)
			ereport(WARNING,
					(errmsg("wgpeer could not export the config files of "
							"interface \"%s\": %s", ifname, now->message),
					 errdetail("No exported file lists a peer the database "
							   "no longer wants; the apply worker tries "
							   "again every %d seconds and says when the "
							   "files are up to date again.",
							   EXPORT_RETRY_MS / 1000),
					 errhint("%s", now->hint)));
		else if (now == NULL)
			ereport(LOG,
					(errmsg("wgpeer exports the config files of interface "
							"\"%s\" again", ifname)));
	}
}

/*
 * Run a pass in a subtransaction, so that an ERROR (a row that cannot be
 * rendered, say) becomes a failure of every interface and the worker
 * goes on; then record each interface's state.  Returns whether the pass
 * completed without failure.
 */
static bool
export_guarded(void)
{
	MemoryContext ctx = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	pass_failed = false;
	pending = NIL;
	failures = NIL;
	writes_left = EXPORT_WRITES_PER_PASS;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(ctx);
	PG_TRY();
	{
		export_all();
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		failures = NIL;
		note_failure(NULL, "Correct the rows the message names, or unset "
					 "wgpeer.export_dir.", "%s", edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	CurrentResourceOwner = owner;
	record_export_state();
	return !pass_failed;
}

/*
 * How often the peer and interface tables have been written to (their
 * cumulative tuple counters): when it moves, files may have to change.
 */
static int64
fingerprint(void)
{
	static SPIPlanPtr plan;
	bool		isnull;

	wgpeer_exec(&plan,
				"SELECT coalesce(sum(pg_stat_get_tuples_inserted(t)"
				"  + pg_stat_get_tuples_updated(t)"
				"  + pg_stat_get_tuples_deleted(t)), 0)::int8"
				" FROM unnest(ARRAY['wgpeer.peer'::regclass,"
				"                   'wgpeer.interface'::regclass]::oid[]) t",
				0, NULL, NULL, NULL);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The export task, woken on every pass after the queue's: bring the
 * exported files up to date when something may have changed (see the
 * file comment), and rewrite them all when due.  Costs one short
 * transaction and no file I/O when nothing changed.  Returns 0 when this
 * pass's writes were spent and more files wait, TASK_IDLE when woken with
 * nothing changed (the pass already due stands), otherwise the
 * milliseconds until the next pass that needs no change to start it.
 */
long
wgpeer_export_due(bool woken)
{
	long		ms = wgpeer_poll_interval;

	if (wgpeer_export_dir == NULL || wgpeer_export_dir[0] == '\0')
	{
		forget_files();
		return TASK_IDLE;
	}
	if (files == NULL || strcmp(files_dir, wgpeer_export_dir) != 0 ||
		files_clients != wgpeer_export_client_configs)
		start_over();

	more_pending = false;
	wgpeer_begin_work("wgpeer: exporting config files");
	if (wgpeer_installed())
	{
		int64		fp = fingerprint();

		/* woken with nothing changed: the pass already due stands */
		ms = TASK_IDLE;
		if (!woken || fp != last_fingerprint)
		{
			bool		ok = export_guarded();

			last_fingerprint = fp;
			more_pending = more_pending && ok;
			ms = more_pending ? 0 :
				ok ? wgpeer_reconcile_interval : EXPORT_RETRY_MS;
		}
	}
	wgpeer_end_work();
	return ms;
}
