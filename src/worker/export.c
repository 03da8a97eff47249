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
 * reconciliation enforces).  When
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
 * Errors never stop the worker: a file that cannot be written or a row
 * that cannot be rendered is reported as a WARNING with a hint, and the
 * pass is retried.
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
static TimestampTz next_pass = 0;

/* A failure in the current pass: later writes wait for the retry. */
static bool pass_failed = false;

/* Writes the current pass may still do; when spent, the rest wait. */
static int	writes_left = 0;
static bool more_pending = false;

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
	next_pass = 0;
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
 * Report a failed file operation once per pass, as a WARNING with a hint;
 * the worker carries on and retries the pass later.
 */
static void
report_failure(const char *what, const char *path, int rc)
{
	if (pass_failed)
		return;
	pass_failed = true;
	ereport(WARNING,
			(errmsg("wgpeer could not %s \"%s\": %s", what, path, strerror(-rc)),
			 errdetail("Exported config files may be out of date; the apply "
					   "worker tries again in %d seconds.",
					   EXPORT_RETRY_MS / 1000),
			 errhint("wgpeer.export_dir must be a directory the PostgreSQL "
					 "server's operating system user can write, or whose "
					 "parent it can write, on a file system with free space.")));
}

/* The absolute path of a file of export_dir, in the current context. */
static char *
full_path(const char *rel)
{
	return psprintf("%s/%s", wgpeer_export_dir, rel);
}

/*
 * Make rel hold data (mode 0600), writing only when what is on disk
 * differs; subdir, when not NULL, is the subdirectory rel lives in,
 * created when a write needs it.  source is recorded for client files.
 */
static void
put_file(const char *rel, const char *subdir, const char *data, size_t len,
		 uint64 source)
{
	uint64		content = hash_of(data, len);
	bool		found;
	ExportFile *f = hash_search(files, rel, HASH_ENTER, &found);
	char	   *path;
	int			rc;

	if (!found)
		f->source = f->content = 0;
	f->wanted = true;
	if (f->content == content)
	{
		f->source = source;
		return;
	}
	if (pass_failed)
		return;
	path = full_path(rel);
	if (f->content == 0 && wg_atomic_unchanged(path, data, len) == 1)
	{
		f->content = content;
		f->source = source;
		return;
	}
	f->content = 0;
	if (writes_left <= 0)
	{
		more_pending = true;
		return;
	}
	writes_left--;
	if (subdir && (rc = wg_atomic_mkdir(full_path(subdir))) < 0)
		report_failure("create directory", full_path(subdir), rc);
	else if ((rc = wg_atomic_write(path, data, len)) < 0)
		report_failure("write", path, rc);
	else
	{
		f->content = content;
		f->source = source;
	}
}

/*
 * Is a name from the database safe as a file name (no '/', no ".."), and
 * short enough?  Rows edited by hand are refused with a WARNING.
 */
static bool
safe_name(const char *name, const char *why, const char *what)
{
	if (why == NULL)
		return true;
	ereport(WARNING,
			(errmsg("wgpeer does not export %s \"%s\"", what, name),
			 errdetail("%s.", why),
			 errhint("Correct the row in the wgpeer tables.")));
	return false;
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
 * Write <interface>.conf for every registered interface.
 */
static void
export_servers(void)
{
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr peer_plan;
	SPITupleTable *ifaces;
	uint64		n_ifaces;

	wgpeer_exec(&iface_plan,
				"SELECT name, private_key, listen_port,"
				" coalesce(persistent_keepalive, 0)"
				" FROM wgpeer.interface"
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
		wg_server_peer *peers;
		uint64		n_peers;
		char	   *buf;
		int			len;

		if (!safe_name(ifname, wg_check_ifname(ifname), "interface"))
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

		len = wg_server_config_render(&cfg, NULL, 0);
		if (len < 0)
		{
			ExportFile *f = hash_search(files, psprintf("%s.conf", ifname),
										HASH_FIND, NULL);

			if (f)
				f->wanted = true;	/* keep the last good file */
			ereport(WARNING,
					(errmsg("wgpeer cannot export interface \"%s\": a stored "
							"field is empty or spans lines", ifname),
					 errhint("Correct the interface's or its peers' rows in "
							 "the wgpeer tables.")));
			pass_failed = true;
			continue;
		}
		buf = palloc(len + 1);
		wg_server_config_render(&cfg, buf, len + 1);
		put_file(psprintf("%s.conf", ifname), NULL, buf, len, 0);
	}
}

/*
 * Write <interface>/<config_name>.conf for every live peer, rendering only
 * the peers whose row (or interface) changed since their file was written.
 */
static void
export_clients(void)
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
		char	   *rel;
		char	   *config;

		if (!safe_name(ifname, wg_check_ifname(ifname), "interface") ||
			!safe_name(name, wg_check_config_name(name), "config_name"))
			continue;
		rel = duplicate ?
			psprintf("%s/%s@%s.conf", ifname, name, SPI_getvalue(tup, desc, 6)) :
			psprintf("%s/%s.conf", ifname, name);

		f = hash_search(files, rel, HASH_FIND, NULL);
		if (f && f->source == source && f->content != 0)
		{
			f->wanted = true;
			continue;
		}
		if (writes_left <= 0)
		{
			/* this pass's writes are spent: render it in a later one */
			if (f)
				f->wanted = true;
			more_pending = true;
			continue;
		}
		config = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));
		SPI_freetuptable(SPI_tuptable);
		put_file(rel, ifname, config, strlen(config), source);
		pfree(config);
	}
}

/*
 * One pass: every wanted file written if it changed, every file no longer
 * wanted removed.  Inside a worker transaction.
 */
static void
export_all(void)
{
	HASH_SEQ_STATUS seq;
	ExportFile *f;
	int			rc;

	if ((rc = wg_atomic_mkdir(wgpeer_export_dir)) < 0)
	{
		report_failure("create directory", wgpeer_export_dir, rc);
		return;
	}
	hash_seq_init(&seq, files);
	while ((f = hash_seq_search(&seq)) != NULL)
		f->wanted = false;

	export_servers();
	/* a node holds no client private keys: no client configs there */
	if (wgpeer_export_client_configs && wgpeer_served_node()[0] == '\0')
		export_clients();
	scan_pending = false;

	hash_seq_init(&seq, files);
	while ((f = hash_seq_search(&seq)) != NULL)
	{
		if (f->wanted || pass_failed)
			continue;
		if (writes_left-- <= 0)
			more_pending = true;
		else if ((rc = wg_atomic_remove(full_path(f->path))) < 0)
			report_failure("remove", full_path(f->path), rc);
		else
			(void) hash_search(files, f->path, HASH_REMOVE, NULL);
	}
}

/*
 * Run a pass in a subtransaction, so that an ERROR (a row that cannot be
 * rendered, say) becomes a WARNING and the worker goes on.  Returns
 * whether the pass completed without failure.
 */
static bool
export_guarded(void)
{
	MemoryContext ctx = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	pass_failed = false;
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
		ereport(WARNING,
				(errmsg("wgpeer could not export config files: %s",
						edata->message),
				 errdetail("The apply worker tries again in %d seconds.",
						   EXPORT_RETRY_MS / 1000),
				 errhint("Correct the rows the message names, or unset "
						 "wgpeer.export_dir.")));
		FreeErrorData(edata);
		pass_failed = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	CurrentResourceOwner = owner;
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
 * Called by the worker after each apply pass: bring the exported files
 * up to date when something may have changed (see the file comment).
 * Costs one short transaction and no file I/O when nothing did.  Returns
 * 0 when this pass's writes were spent and more files wait, otherwise the
 * milliseconds until the next pass that needs no change to start it.
 */
long
wgpeer_export_due(void)
{
	TimestampTz now;

	if (wgpeer_export_dir == NULL || wgpeer_export_dir[0] == '\0')
	{
		forget_files();
		return TASK_IDLE;
	}
	if (files == NULL || strcmp(files_dir, wgpeer_export_dir) != 0 ||
		files_clients != wgpeer_export_client_configs)
		start_over();

	now = GetCurrentTimestamp();
	more_pending = false;
	wgpeer_begin_work("wgpeer: exporting config files");
	if (wgpeer_installed())
	{
		int64		fp = fingerprint();

		if (now >= next_pass || fp != last_fingerprint)
		{
			bool		ok = export_guarded();

			last_fingerprint = fp;
			more_pending = more_pending && ok;
			next_pass = more_pending ? now :
				TimestampTzPlusMilliseconds(now, ok ? wgpeer_reconcile_interval :
											EXPORT_RETRY_MS);
		}
	}
	wgpeer_end_work();
	if (more_pending)
		return 0;
	return Max(1, (long) ((next_pass - GetCurrentTimestamp()) / 1000));
}
