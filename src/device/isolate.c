/*
 * isolate.c
 *		Applying a batch so that one change the device refuses never holds
 *		back the others.
 *
 * A device applies the peers of a set in order and stops at the first it
 * refuses (the kernel and wireguard-go both do), and a listen port that
 * cannot be bound fails the whole set.  So a batch is sent in three parts:
 * the removals first (a revoked peer must leave even when an addition is
 * refused), then the additions, then the device's own settings (private
 * key, listen port), whose failure is reported apart and holds back no
 * peer.  When a part fails, an empty set probes the device: if that fails
 * too, the device itself is failing (gone, daemon stopped) and the caller
 * retries the whole batch later; otherwise the part is split in halves
 * until the refused peers are found, each with its own error.  Applying a
 * peer twice equals applying it once, so the halves may resend what a
 * failed set already applied.  The splitting has a budget of sets per
 * part: when a device refuses many peers at once (a full device), the
 * peers not yet told apart are reported with the error that covered them.
 *
 * Pure C, no PostgreSQL and no I/O of its own: the caller passes the
 * backend's set function, so the unit tests drive it with a recording
 * fake.
 */
#include "device/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The state of one apply: the caller's change, setter and outcome. */
typedef struct isolation
{
	const wg_device_change *change;
	wg_device_setter set;
	void	   *arg;
	wg_apply_outcome *out;
	int		   *peer_rc;
	wg_peer_change *scratch;	/* the peers of the set being sent */
	unsigned int budget;		/* sets the current part may still split */
} isolation;

/*
 * Send the peers whose indexes are listed, without device settings.
 * Returns 0 or -errno; a device that could not be reached at all is
 * recorded as the outcome's device failure.
 */
static int
send_peers(isolation *iso, const size_t *idx, size_t n)
{
	wg_device_change part;
	bool		at_open = false;
	int			rc;

	for (size_t i = 0; i < n; i++)
		iso->scratch[i] = iso->change->peers[idx[i]];
	memset(&part, 0, sizeof(part));
	part.ifname = iso->change->ifname;
	part.listen_port = -1;
	part.peers = iso->scratch;
	part.n_peers = n;
	rc = iso->set(iso->arg, &part, &at_open);
	iso->out->sets++;
	if (rc < 0 && at_open)
	{
		iso->out->device_rc = rc;
		iso->out->at_open = true;
	}
	return rc < 0 ? rc : 0;
}

/*
 * Record rc as the error of each listed peer.
 */
static void
refuse(isolation *iso, const size_t *idx, size_t n, int rc)
{
	for (size_t i = 0; i < n; i++)
		iso->peer_rc[idx[i]] = rc;
	iso->out->refused += n;
}

/*
 * The listed peers failed together with rc: find which of them the device
 * refuses, halving while the budget lasts.  Stops when the device fails
 * as a whole.
 */
static void
split(isolation *iso, const size_t *idx, size_t n, int rc)
{
	size_t		half = n / 2;
	const size_t *part[2] = {idx, idx + half};
	size_t		len[2] = {half, n - half};

	if (n == 1)
	{
		refuse(iso, idx, n, rc);
		return;
	}
	for (int k = 0; k < 2 && iso->out->device_rc == 0; k++)
	{
		int			part_rc;

		if (iso->budget == 0)
		{
			refuse(iso, part[k], len[k], rc);
			continue;
		}
		iso->budget--;
		if ((part_rc = send_peers(iso, part[k], len[k])) < 0 &&
			iso->out->device_rc == 0)
			split(iso, part[k], len[k], part_rc);
	}
}

/*
 * Is the device itself answering?  An empty set (the interface's name
 * only) changes nothing; when even that fails, the device is failing as a
 * whole and rc is recorded as its error.
 */
static bool
device_answers(isolation *iso, int rc)
{
	wg_device_change empty;
	bool		at_open = false;
	int			probe;

	memset(&empty, 0, sizeof(empty));
	empty.ifname = iso->change->ifname;
	empty.listen_port = -1;
	probe = iso->set(iso->arg, &empty, &at_open);
	iso->out->sets++;
	if (probe >= 0)
		return true;
	iso->out->device_rc = rc;
	iso->out->at_open = at_open;
	return false;
}

/*
 * Send one part (removals or additions) and isolate what the device
 * refuses in it.
 */
static void
apply_part(isolation *iso, const size_t *idx, size_t n)
{
	int			rc;

	if (n == 0 || iso->out->device_rc != 0)
		return;
	if ((rc = send_peers(iso, idx, n)) == 0 || iso->out->device_rc != 0)
		return;
	if (!device_answers(iso, rc))
		return;
	iso->budget = WG_ISOLATE_MAX_SETS;
	split(iso, idx, n, rc);
}

/*
 * Apply change through set so that refused peers and refused settings
 * hold back nothing else.  peer_rc (one per peer of change) receives 0 for
 * each peer applied and -errno for each refused; out says whether the
 * device failed as a whole (then peer_rc means nothing and the batch is to
 * be retried), whether the settings were refused, and how many sets were
 * sent.  Returns 0, or -ENOMEM.
 */
int
wg_device_apply_isolated(const wg_device_change *change, wg_device_setter set,
						 void *arg, int *peer_rc, wg_apply_outcome *out)
{
	isolation	iso;
	size_t	   *removals;
	size_t	   *additions;
	size_t		n_removals = 0;
	size_t		n_additions = 0;

	memset(out, 0, sizeof(*out));
	removals = malloc(sizeof(size_t) * (change->n_peers + 1));
	additions = malloc(sizeof(size_t) * (change->n_peers + 1));
	iso.scratch = malloc(sizeof(wg_peer_change) * (change->n_peers + 1));
	if (removals == NULL || additions == NULL || iso.scratch == NULL)
	{
		free(removals);
		free(additions);
		free(iso.scratch);
		return -ENOMEM;
	}
	iso.change = change;
	iso.set = set;
	iso.arg = arg;
	iso.out = out;
	iso.peer_rc = peer_rc;
	iso.budget = 0;
	for (size_t i = 0; i < change->n_peers; i++)
	{
		peer_rc[i] = 0;
		if (change->peers[i].remove)
			removals[n_removals++] = i;
		else
			additions[n_additions++] = i;
	}

	apply_part(&iso, removals, n_removals);
	apply_part(&iso, additions, n_additions);

	if (out->device_rc == 0 &&
		(change->has_private_key || change->listen_port >= 0 ||
		 change->awg != NULL))
	{
		wg_device_change settings;
		bool		at_open = false;

		memset(&settings, 0, sizeof(settings));
		settings.ifname = change->ifname;
		settings.has_private_key = change->has_private_key;
		memcpy(settings.private_key, change->private_key, WG_KEY_LEN);
		settings.listen_port = change->listen_port;
		settings.awg = change->awg;
		out->settings_rc = set(arg, &settings, &at_open);
		out->sets++;
		if (out->settings_rc > 0)
			out->settings_rc = 0;
		explicit_bzero(settings.private_key, WG_KEY_LEN);
	}

	free(removals);
	free(additions);
	free(iso.scratch);
	return 0;
}
