/*
 * managed.c
 *		Which device peers are wgpeer's: reconcile never takes over a peer
 *		configured by hand.
 *
 * wgpeer.managed_key lists the keys wgpeer has put on each interface (or
 * an admin adopted with wg_import_peer), removed since or not: a revoked
 * peer's key put back by hand is removed again.  A device peer whose key
 * is not listed is still wgpeer's when it holds the database peer's own
 * tunnel address, or no allowed IP at all (wg_peer_may_be(): an apply the
 * worker could not record before a crash, a dump restored onto the same
 * host); such keys are adopted.  Any other unlisted device peer is
 * foreign: reconcile neither corrects nor removes it, even when a
 * database peer has its key (an application brought the key of a peer
 * configured by hand; the apply path refuses that peer, see apply.c).
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "device/diff.h"

/*
 * Of the keys known (revoked, expired...) that are on the device but not
 * managed, those whose device peer holds the tunnel address of a database
 * peer with that key: wgpeer's, to be removed.  Marks them in keep.
 */
static void
known_held(const char *ifname, const wg_device *dev,
		   uint8_t (*known)[WG_KEY_LEN], const size_t *idx, size_t n_idx,
		   bool *keep)
{
	static SPIPlanPtr plan;
	Datum	   *texts = palloc(sizeof(Datum) * (n_idx + 1));
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];

	for (size_t i = 0; i < n_idx; i++)
	{
		char		b64[WG_KEY_B64_SIZE];

		wg_key_to_base64(b64, known[idx[i]]);
		texts[i] = CStringGetTextDatum(b64);
	}
	values[0] = CStringGetTextDatum(ifname);
	values[1] = PointerGetDatum(construct_array(texts, (int) n_idx, TEXTOID,
												-1, false, TYPALIGN_INT));
	wgpeer_exec(&plan,
				"SELECT public_key, ARRAY[set_masklen(address, 32)]::cidr[]"
				" FROM wgpeer.peer WHERE interface = $1"
				"   AND public_key = ANY ($2)",
				2, types, values, NULL);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		uint8_t		key[WG_KEY_LEN];
		wg_allowedip *own;
		bool		isnull;
		wg_peer_info *p;

		wgpeer_stored_key(SPI_getvalue(SPI_tuptable->vals[r],
									   SPI_tuptable->tupdesc, 1), key);
		if (wgpeer_stored_allowedips(SPI_getbinval(SPI_tuptable->vals[r],
												   SPI_tuptable->tupdesc, 2,
												   &isnull),
									 CurrentMemoryContext, &own) != 1 ||
			(p = wg_device_find_peer(dev, key)) == NULL ||
			!wg_peer_may_be(p, &own[0]))
			continue;
		for (size_t i = 0; i < n_idx; i++)
			if (memcmp(known[idx[i]], key, WG_KEY_LEN) == 0)
				keep[i] = true;
	}
}

/*
 * Take out of the wanted desired peers and known keys the keys a foreign
 * peer holds on dev (see the file comment), so that the diff leaves that
 * peer alone (or removes it, on an exclusive interface, like any peer
 * nobody registered).  Whether wgpeer manages each key came with it
 * (wanted.c).  What wgpeer_record_managed() needs afterwards goes in
 * *screen.  Sorts dev's peers.
 */
void
wgpeer_screen_foreign(const char *ifname, wg_device *dev, WgWanted *wanted,
					  WgManagedScreen *screen)
{
	wg_desired_peer *desired = wanted->desired;
	uint8_t		(*known)[WG_KEY_LEN] = wanted->known;
	size_t	   *idx = palloc0(sizeof(size_t) * (wanted->n_known + 1));
	bool	   *keep;
	size_t		n_idx = 0;
	size_t		kept = 0;

	memset(screen, 0, sizeof(*screen));
	screen->adopt = palloc0(WG_KEY_LEN * (wanted->n_desired + 1));
	wg_device_sort_peers(dev);
	for (size_t i = 0; i < wanted->n_desired; i++)
	{
		wg_desired_peer *d = &desired[i];
		wg_peer_info *p;

		if (wanted->desired_managed[i])
		{
			desired[kept++] = *d;
			continue;
		}
		p = wg_device_find_peer(dev, d->public_key);
		if (p != NULL &&
			(d->n_allowedips == 0 || !wg_peer_may_be(p, &d->allowedips[0])))
		{
			screen->foreign++;
			continue;
		}
		memcpy(screen->adopt[screen->n_adopt++], d->public_key, WG_KEY_LEN);
		desired[kept++] = *d;
	}
	wanted->n_desired = kept;

	/* known keys on the device, not managed: removed only when held */
	for (size_t i = 0; i < wanted->n_known; i++)
		if (!wanted->known_managed[i] &&
			wg_device_find_peer(dev, known[i]) != NULL)
			idx[n_idx++] = i;
	if (n_idx == 0)
		return;
	keep = palloc0(sizeof(bool) * (n_idx + 1));
	known_held(ifname, dev, known, idx, n_idx, keep);
	kept = 0;
	for (size_t i = 0, j = 0; i < wanted->n_known; i++)
	{
		if (j < n_idx && idx[j] == i && !keep[j++])
			continue;
		if (kept != i)
			memcpy(known[kept], known[i], WG_KEY_LEN);
		kept++;
	}
	wanted->n_known = kept;
}

/*
 * After reconcile applied changes to ifname (or found none to apply):
 * the desired keys screen adopted become managed, unless the device
 * refused their change.  changes and peer_rc are those of the apply
 * (n_changes 0: none).
 */
void
wgpeer_record_managed(const char *ifname, const WgManagedScreen *screen,
					  const wg_peer_change *changes, size_t n_changes,
					  const int *peer_rc)
{
	static SPIPlanPtr plan;
	Datum	   *added = palloc(sizeof(Datum) * (screen->n_adopt + 1));
	int			n_added = 0;
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		any_refused = false;

	for (size_t c = 0; c < n_changes; c++)
		any_refused |= peer_rc[c] < 0;
	for (size_t i = 0; i < screen->n_adopt; i++)
	{
		bool		refused = false;
		char		b64[WG_KEY_B64_SIZE];

		for (size_t c = 0; any_refused && c < n_changes && !refused; c++)
			refused = peer_rc[c] < 0 &&
				memcmp(changes[c].public_key, screen->adopt[i], WG_KEY_LEN) == 0;
		if (refused)
			continue;
		wg_key_to_base64(b64, screen->adopt[i]);
		added[n_added++] = CStringGetTextDatum(b64);
	}
	if (n_added == 0)
		return;
	values[0] = CStringGetTextDatum(ifname);
	values[1] = PointerGetDatum(construct_array(added, n_added, TEXTOID, -1,
												false, TYPALIGN_INT));
	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.managed_key (interface, public_key)"
				" SELECT $1, k FROM unnest($2::text[]) k"
				" ON CONFLICT DO NOTHING",
				2, types, values, NULL);
}
