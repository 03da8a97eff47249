/*
 * stats.c
 *		Sampling the live devices: handshakes, endpoints and traffic per
 *		peer, every wgpeer.stats_interval and whenever a session's wg_show()
 *		asks for a fresh look (src/sql/show.c), so that client backends
 *		never need CAP_NET_ADMIN.
 *
 * The worker dumps every registered interface, writes what it saw into
 * wgpeer.device_peer and wgpeer.device, and adds the growth of each
 * peer's counters to wgpeer.peer_traffic.
 */
#include "worker/worker.h"

#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* samples taken by this worker, for watch.c */
static uint64 samples_taken = 0;

/*
 * An allowed IP or endpoint address as text.
 */
static void
format_ip(int family, const void *addr, char *buf, size_t size)
{
	if (inet_ntop(family, addr, buf, size) == NULL)
		snprintf(buf, size, "?");
}

/*
 * Record what the kernel reported for one interface, in one statement:
 * each peer's row in wgpeer.device_peer is updated in place when something
 * changed, rows of peers gone from the device are deleted, and each
 * peer's traffic is added to wgpeer.peer_traffic as the growth of the
 * kernel counters since the last sample, so totals survive resets: when
 * either counter went backwards (the interface was recreated, or the peer
 * removed and added again) both restarted from zero, and each is counted
 * whole.  Judging each direction alone lost bytes: a peer that had sent
 * little before the reset had its new small counter taken for growth.  Unchanged peers cause no write at all, not even a row
 * lock: what a sample writes (and its WAL) grows with the peers whose
 * traffic, handshake or endpoint changed, not with the device.
 */
static void
store_device(const char *ifname, const wg_device *dev)
{
	static SPIPlanPtr plan;
	int			n = (int) dev->n_peers;
	Datum	   *keys = palloc(sizeof(Datum) * (n + 1));
	Datum	   *endpoints = palloc(sizeof(Datum) * (n + 1));
	bool	   *endpoint_nulls = palloc(sizeof(bool) * (n + 1));
	Datum	   *ips_text = palloc(sizeof(Datum) * (n + 1));
	Datum	   *handshakes = palloc(sizeof(Datum) * (n + 1));
	bool	   *handshake_nulls = palloc(sizeof(bool) * (n + 1));
	Datum	   *rx = palloc(sizeof(Datum) * (n + 1));
	Datum	   *tx = palloc(sizeof(Datum) * (n + 1));
	Datum	   *keepalives = palloc(sizeof(Datum) * (n + 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Oid			types[8] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[8];

	for (int i = 0; i < n; i++)
	{
		const wg_peer_info *p = &dev->peers[i];
		StringInfoData ips;
		char		addr[INET6_ADDRSTRLEN];

		keys[i] = CStringGetTextDatum(wgpeer_key_text(p->public_key));
		endpoint_nulls[i] = false;
		if (p->endpoint.family == AF_INET)
		{
			format_ip(AF_INET, &p->endpoint.in4.sin_addr, addr, sizeof(addr));
			endpoints[i] = CStringGetTextDatum(psprintf("%s:%u", addr,
														ntohs(p->endpoint.in4.sin_port)));
		}
		else if (p->endpoint.family == AF_INET6)
		{
			format_ip(AF_INET6, &p->endpoint.in6.sin6_addr, addr, sizeof(addr));
			endpoints[i] = CStringGetTextDatum(psprintf("[%s]:%u", addr,
														ntohs(p->endpoint.in6.sin6_port)));
		}
		else
		{
			endpoints[i] = (Datum) 0;
			endpoint_nulls[i] = true;
		}
		initStringInfo(&ips);
		for (size_t k = 0; k < p->n_allowedips; k++)
		{
			format_ip(p->allowedips[k].family, &p->allowedips[k].addr,
					  addr, sizeof(addr));
			appendStringInfo(&ips, "%s%s/%u", k ? ", " : "", addr,
							 p->allowedips[k].cidr);
		}
		ips_text[i] = CStringGetTextDatum(ips.data);
		handshake_nulls[i] = p->last_handshake_sec <= 0;
		handshakes[i] = handshake_nulls[i] ? (Datum) 0 :
			TimestampTzGetDatum(time_t_to_timestamptz(p->last_handshake_sec) +
								p->last_handshake_nsec / 1000);
		rx[i] = Int64GetDatum((int64) p->rx_bytes);
		tx[i] = Int64GetDatum((int64) p->tx_bytes);
		keepalives[i] = Int32GetDatum(p->keepalive);
	}
	values[0] = CStringGetTextDatum(ifname);
	values[1] = PointerGetDatum(construct_array(keys, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(endpoints, endpoint_nulls, 1,
												   dims, lbs, TEXTOID, -1,
												   false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(ips_text, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(handshakes, handshake_nulls, 1,
												   dims, lbs, TIMESTAMPTZOID, 8,
												   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[5] = PointerGetDatum(construct_array(rx, n, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[6] = PointerGetDatum(construct_array(tx, n, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[7] = PointerGetDatum(construct_array(keepalives, n, INT4OID, 4, true,
												TYPALIGN_INT));
	wgpeer_exec_opts(&plan,
					 "WITH s AS ("
					 "  SELECT * FROM unnest($2, $3, $4, $5, $6, $7, $8)"
					 "  AS s(public_key, endpoint, allowed_ips, latest_handshake,"
					 "       rx_bytes, tx_bytes, persistent_keepalive)),"
					 " gone AS ("
					 "  DELETE FROM wgpeer.device_peer d WHERE d.interface = $1"
					 "  AND d.public_key NOT IN (SELECT public_key FROM s)),"
					 /* the peers the device reports differently, with the old row */
					 " changed AS ("
					 "  SELECT s.*, o.public_key IS NULL AS new_row,"
					 "    o.rx_bytes AS old_rx, o.tx_bytes AS old_tx,"
					 "    o.latest_handshake AS old_handshake, o.endpoint AS old_endpoint,"
					 /* either counter went back: both restarted from zero */
					 "    (o.public_key IS NULL OR s.rx_bytes < o.rx_bytes"
					 "     OR s.tx_bytes < o.tx_bytes) AS new_base"
					 "  FROM s LEFT JOIN wgpeer.device_peer o"
					 "    ON o.interface = $1 AND o.public_key = s.public_key"
					 "  WHERE o.public_key IS NULL"
					 "     OR (o.endpoint, o.allowed_ips, o.latest_handshake,"
					 "         o.rx_bytes, o.tx_bytes, o.persistent_keepalive)"
					 "        IS DISTINCT FROM"
					 "        (s.endpoint, s.allowed_ips, s.latest_handshake,"
					 "         s.rx_bytes, s.tx_bytes, s.persistent_keepalive)),"
					 " updated AS ("
					 "  UPDATE wgpeer.device_peer d"
					 "  SET endpoint = c.endpoint, allowed_ips = c.allowed_ips,"
					 "      latest_handshake = c.latest_handshake,"
					 "      rx_bytes = c.rx_bytes, tx_bytes = c.tx_bytes,"
					 "      persistent_keepalive = c.persistent_keepalive"
					 "  FROM changed c"
					 "  WHERE NOT c.new_row AND d.interface = $1"
					 "    AND d.public_key = c.public_key),"
					 " inserted AS ("
					 "  INSERT INTO wgpeer.device_peer (interface, public_key, endpoint,"
					 "    allowed_ips, latest_handshake, rx_bytes, tx_bytes,"
					 "    persistent_keepalive)"
					 "  SELECT $1, c.public_key, c.endpoint, c.allowed_ips,"
					 "    c.latest_handshake, c.rx_bytes, c.tx_bytes,"
					 "    c.persistent_keepalive"
					 "  FROM changed c WHERE c.new_row"
					 "  ON CONFLICT (interface, public_key, node) DO NOTHING)"
					 " INSERT INTO wgpeer.peer_traffic AS t (peer_id, rx_bytes,"
					 "   tx_bytes, latest_handshake, endpoint, sampled_at)"
					 " SELECT p.peer_id,"
					 "   CASE WHEN c.new_base THEN c.rx_bytes"
					 "        ELSE c.rx_bytes - c.old_rx END,"
					 "   CASE WHEN c.new_base THEN c.tx_bytes"
					 "        ELSE c.tx_bytes - c.old_tx END,"
					 "   c.latest_handshake, c.endpoint, now()"
					 " FROM changed c"
					 " JOIN wgpeer.peer p ON p.public_key = c.public_key"
					 "   AND p.interface = $1 AND p.released_at IS NULL"
					 " WHERE c.new_row OR c.rx_bytes <> c.old_rx OR c.tx_bytes <> c.old_tx"
					 "    OR (c.latest_handshake, c.endpoint) IS DISTINCT FROM"
					 "       (c.old_handshake, c.old_endpoint)"
					 /* a peer being deleted (on a node, by replication) is skipped */
					 " FOR KEY SHARE OF p SKIP LOCKED"
					 " ON CONFLICT (peer_id, node) DO UPDATE"
					 " SET rx_bytes = t.rx_bytes + EXCLUDED.rx_bytes,"
					 "     tx_bytes = t.tx_bytes + EXCLUDED.tx_bytes,"
					 "     latest_handshake = EXCLUDED.latest_handshake,"
					 "     endpoint = EXCLUDED.endpoint, sampled_at = now()"
					 " WHERE EXCLUDED.rx_bytes > 0 OR EXCLUDED.tx_bytes > 0"
					 "    OR (t.latest_handshake, t.endpoint) IS DISTINCT FROM"
					 "       (EXCLUDED.latest_handshake, EXCLUDED.endpoint)",
					 8, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * Record the outcome of reading one interface in wgpeer.device.
 */
static void
store_outcome(const char *ifname, const char *error)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(ifname),
	error ? CStringGetTextDatum(error) : (Datum) 0};
	char		nulls[2] = {' ', error ? ' ' : 'n'};

	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.device (interface, sampled_at, error)"
				" VALUES ($1, now(), $2)"
				" ON CONFLICT (interface, node) DO UPDATE"
				" SET sampled_at = now(), error = $2",
				2, types, values, nulls);
}

/*
 * Worker side: dump every registered interface into the device tables,
 * in one transaction.  The interface rows are key-share locked until it
 * ends, so none can be unregistered under the rows written for it; one
 * being unregistered right now (wg_remove_interface() holds it) is
 * skipped rather than waited for.
 */
void
wgpeer_sample_devices(void)
{
	bool		installed;

	wgpeer_begin_work("wgpeer: reading the devices");
	installed = wgpeer_installed();
	if (installed &&
		SPI_execute("SELECT name, backend FROM wgpeer.interface"
					" WHERE node = current_setting('wgpeer.node') ORDER BY name"
					" FOR KEY SHARE SKIP LOCKED", false, 0) == SPI_OK_SELECT)
	{
		SPITupleTable *names = SPI_tuptable;
		uint64		n = SPI_processed;

		for (uint64 r = 0; r < n; r++)
		{
			char	   *ifname = SPI_getvalue(names->vals[r], names->tupdesc, 1);
			WgBackend	backend = wgpeer_backend(SPI_getvalue(names->vals[r],
															  names->tupdesc, 2));
			wg_device dev;
			bool		at_open;
			int			rc = wgpeer_device_get(ifname, backend, &dev, &at_open);
			char	   *message = NULL;
			const char *hint;

			if (rc == 0)
				store_device(ifname, &dev);
			else
				wgpeer_describe_failure(rc, at_open, ifname, backend, &message, &hint);
			wg_device_free(&dev);
			store_outcome(ifname, message);
		}
	}
	wgpeer_end_work();
	samples_taken++;
}

/*
 * How many samples this worker has taken.
 */
uint64
wgpeer_samples_taken(void)
{
	return samples_taken;
}

/*
 * Sample the devices when wgpeer.stats_interval has passed since the
 * last sample (0 turns sampling off).  Returns the milliseconds until the
 * next sample is due.
 */
long
wgpeer_stats_due(bool woken)
{
	if (wgpeer_stats_interval <= 0)
		return TASK_IDLE;
	wgpeer_sample_devices();
	return wgpeer_stats_interval;
}
