/*
 * wanted.c
 *		The peers the database wants on an interface, and the keys it wants
 *		off it, read for reconcile straight from the executor.
 *
 * A reconcile of an interface with 10,000 peers reads 10,000 rows each
 * time, usually to find that nothing changed, so the read is most of its
 * cost.  Through an SPI tuple table every row would be copied into a heap
 * tuple, its keys printed to C strings and decoded again, its allowed IPs
 * built into an array by the query and taken apart by the worker.  Here a
 * DestReceiver takes each row from the executor's slot as it is produced:
 * the keys are decoded from the text datums in place, the allowed IPs come
 * from the peer's address columns into one array for all peers, and
 * whether wgpeer manages each key (wgpeer.managed_key, managed.c) comes
 * with the row from a join instead of a second read of every managed key.
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "nodes/params.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/memutils.h"

#include "core/keys.h"

/* What a receiver collects, in the caller's memory context. */
typedef struct WantedReceiver
{
	DestReceiver pub;
	MemoryContext cxt;			/* where the arrays live */
	WgWanted   *wanted;
	size_t		cap;			/* rows the arrays have room for */
	/* the desired peers' allowed IPs, all peers in one array */
	wg_allowedip *ips;
	size_t		n_ips;
	size_t		cap_ips;
	size_t	   *first_ip;		/* per desired peer, its first in ips */
} WantedReceiver;

/*
 * Decode a stored key from its text datum without copying the row: keys
 * are short, so the datum is the table's bytes.  A stored key was
 * validated on the way in; one that is not a key was edited by hand.
 */
static void
datum_key(Datum d, uint8_t key[WG_KEY_LEN])
{
	text	   *t = DatumGetTextPP(d);
	char		b64[WG_KEY_B64_SIZE];

	if (VARSIZE_ANY_EXHDR(t) != WG_KEY_B64_LEN)
		elog(ERROR, "wgpeer: stored key \"%s\" is not a WireGuard key",
			 text_to_cstring(t));
	memcpy(b64, VARDATA_ANY(t), WG_KEY_B64_LEN);
	b64[WG_KEY_B64_LEN] = '\0';
	wgpeer_stored_key(b64, key);
}

/*
 * Make room for one more row in the receiver's per-row arrays (doubling,
 * so 10,000 rows cost a dozen reallocations, not 10,000 allocations).
 */
static void
grow_rows(WantedReceiver *r, bool desired)
{
	WgWanted   *w = r->wanted;
	size_t		n = desired ? w->n_desired : w->n_known;

	if (n < r->cap)
		return;
	r->cap = r->cap == 0 ? 256 : r->cap * 2;
	if (desired)
	{
		w->desired = n == 0 ?
			MemoryContextAllocZero(r->cxt, sizeof(*w->desired) * (r->cap + 1)) :
			repalloc(w->desired, sizeof(*w->desired) * (r->cap + 1));
		w->desired_managed = n == 0 ?
			MemoryContextAlloc(r->cxt, sizeof(bool) * (r->cap + 1)) :
			repalloc(w->desired_managed, sizeof(bool) * (r->cap + 1));
		r->first_ip = n == 0 ?
			MemoryContextAlloc(r->cxt, sizeof(size_t) * (r->cap + 1)) :
			repalloc(r->first_ip, sizeof(size_t) * (r->cap + 1));
	}
	else
	{
		w->known = n == 0 ?
			MemoryContextAlloc(r->cxt, WG_KEY_LEN * (r->cap + 1)) :
			repalloc(w->known, WG_KEY_LEN * (r->cap + 1));
		w->known_managed = n == 0 ?
			MemoryContextAlloc(r->cxt, sizeof(bool) * (r->cap + 1)) :
			repalloc(w->known_managed, sizeof(bool) * (r->cap + 1));
	}
}

/*
 * Append an address (an inet or cidr datum) to the allowed IPs: as its
 * host prefix (/32, /128) when host, else as the prefix it is.
 */
static void
add_ip(WantedReceiver *r, Datum d, bool host)
{
	inet	   *ip = DatumGetInetPP(d);
	wg_allowedip *a;

	if (r->n_ips == r->cap_ips)
	{
		r->cap_ips = r->cap_ips == 0 ? 512 : r->cap_ips * 2;
		r->ips = r->n_ips == 0 ?
			MemoryContextAlloc(r->cxt, sizeof(wg_allowedip) * r->cap_ips) :
			repalloc(r->ips, sizeof(wg_allowedip) * r->cap_ips);
	}
	a = &r->ips[r->n_ips++];
	memset(a, 0, sizeof(*a));
	a->family = ip_family(ip) == PGSQL_AF_INET ? AF_INET : AF_INET6;
	a->cidr = host ? (a->family == AF_INET ? 32 : 128) : ip_bits(ip);
	memcpy(&a->addr, ip_addr(ip), wg_allowedip_addr_len(a->family));
}

/*
 * One desired peer: public_key, preshared_key, address, address6, routes,
 * keepalive, managed.  Its allowed IPs are its tunnel addresses, then its
 * routes, as WGPEER_ALLOWED_IPS_SQL lists them.
 */
static bool
receive_desired(TupleTableSlot *slot, DestReceiver *self)
{
	WantedReceiver *r = (WantedReceiver *) self;
	WgWanted   *w = r->wanted;
	wg_desired_peer *d;
	Datum	   *v;
	bool	   *null;

	slot_getallattrs(slot);
	v = slot->tts_values;
	null = slot->tts_isnull;
	grow_rows(r, true);
	d = &w->desired[w->n_desired];
	memset(d, 0, sizeof(*d));
	datum_key(v[0], d->public_key);
	if (!null[1])
		datum_key(v[1], d->preshared_key);
	r->first_ip[w->n_desired] = r->n_ips;
	if (!null[2])
		add_ip(r, v[2], true);
	if (!null[3])
		add_ip(r, v[3], true);
	if (!null[4])
	{
		ArrayType  *routes = DatumGetArrayTypeP(v[4]);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(routes, CIDROID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				add_ip(r, elems[i], false);
	}
	d->n_allowedips = r->n_ips - r->first_ip[w->n_desired];
	if (d->n_allowedips > WG_PEER_ALLOWEDIPS_MAX)
		elog(ERROR, "wgpeer: a stored peer has %zu allowed IPs, more than %d",
			 d->n_allowedips, WG_PEER_ALLOWEDIPS_MAX);
	d->keepalive = DatumGetInt32(v[5]);
	w->desired_managed[w->n_desired++] = DatumGetBool(v[6]);
	return true;
}

/* One known key: public_key, managed. */
static bool
receive_known(TupleTableSlot *slot, DestReceiver *self)
{
	WantedReceiver *r = (WantedReceiver *) self;
	WgWanted   *w = r->wanted;

	slot_getallattrs(slot);
	grow_rows(r, false);
	datum_key(slot->tts_values[0], w->known[w->n_known]);
	w->known_managed[w->n_known++] = DatumGetBool(slot->tts_values[1]);
	return true;
}

/* The receiver's startup, shutdown and destroy: nothing to do. */
static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

/* See receiver_startup. */
static void
receiver_nothing(DestReceiver *self)
{
}

/*
 * Run plan (prepared on first use from sql, with the interface name as
 * $1) and hand each row to receive.
 */
static void
run_into(SPIPlanPtr *plan, const char *sql, const char *ifname,
		 WantedReceiver *r, bool (*receive) (TupleTableSlot *, DestReceiver *))
{
	SPIExecuteOptions options;
	ParamListInfo params = makeParamList(1);

	if (*plan == NULL)
	{
		Oid			types[1] = {TEXTOID};
		SPIPlanPtr	p = SPI_prepare_cursor(sql, 1, types, CURSOR_OPT_CUSTOM_PLAN);

		if (p == NULL)
			elog(ERROR, "wgpeer: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	params->numParams = 1;
	params->params[0].value = CStringGetTextDatum(ifname);
	params->params[0].isnull = false;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = TEXTOID;

	r->pub.receiveSlot = receive;
	r->pub.rStartup = receiver_startup;
	r->pub.rShutdown = receiver_nothing;
	r->pub.rDestroy = receiver_nothing;
	/* not DestSPI: SPI would look for its tuple table */
	r->pub.mydest = DestNone;
	r->cap = 0;

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = (DestReceiver *) r;
	if (SPI_execute_plan_extended(*plan, &options) < 0)
		elog(ERROR, "wgpeer: could not execute \"%s\"", sql);
}

/*
 * The peers the database wants on ifname (creating and active ones not
 * past their expiry), each with its tunnel addresses and routes as allowed
 * IPs, and the keys of peers it suspended, revoked or expired there or
 * whose expiry has passed (a node removes those at expires_at on its own,
 * before the primary marks them expired), and the keys whose removal is
 * queued (a rotated peer's old key): all of those are removed.  With each
 * key, whether wgpeer manages it on ifname.  Planned afresh each time (a
 * table grown from empty in one transaction must not keep a plan made
 * while it was empty).  Allocated in the current memory context.
 */
void
wgpeer_read_wanted(const char *ifname, WgWanted *wanted)
{
	static SPIPlanPtr want_plan;
	static SPIPlanPtr known_plan;
	WantedReceiver r;

	memset(wanted, 0, sizeof(*wanted));
	memset(&r, 0, sizeof(r));
	r.cxt = CurrentMemoryContext;
	r.wanted = wanted;

	run_into(&want_plan,
			 "SELECT p.public_key, p.preshared_key, p.address, p.address6,"
			 " p.routes,"
			 " coalesce(p.persistent_keepalive, i.persistent_keepalive, 0),"
			 " m.public_key IS NOT NULL"
			 " FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface"
			 " LEFT JOIN wgpeer.managed_key m"
			 "   ON m.interface = p.interface AND m.public_key = p.public_key"
			 " WHERE p.interface = $1 AND p.status IN ('creating', 'active')"
			 "   AND (p.expires_at IS NULL OR p.expires_at > now())",
			 ifname, &r, receive_desired);
	if (wanted->n_desired == 0)
		wanted->desired = palloc0(sizeof(*wanted->desired));
	for (size_t i = 0; i < wanted->n_desired; i++)
		wanted->desired[i].allowedips = wanted->desired[i].n_allowedips > 0 ?
			&r.ips[r.first_ip[i]] : NULL;

	run_into(&known_plan,
			 "SELECT k.public_key, m.public_key IS NOT NULL"
			 " FROM (SELECT public_key FROM wgpeer.peer"
			 "   WHERE interface = $1"
			 "     AND (status IN ('suspended', 'revoked', 'expired')"
			 "     OR expires_at <= now())"
			 "   UNION SELECT public_key FROM wgpeer.queue"
			 "   WHERE interface = $1 AND op = 'remove') k"
			 " LEFT JOIN wgpeer.managed_key m"
			 "   ON m.interface = $1 AND m.public_key = k.public_key",
			 ifname, &r, receive_known);
	if (wanted->n_known == 0)
		wanted->known = palloc0(WG_KEY_LEN);
}
