------------------------------------------------------------------------------
-- The change queue and what the apply worker records
--
-- The queue holds desired device changes, written by the writers
-- test/check_layers.pl names (the peer_queue trigger, src/sql/queue.c, in
-- the caller's transaction; a node's expiry, src/worker/expiry.c), and
-- consumed by the apply worker after commit (src/worker/apply.c).  The
-- worker writes the rest of this file's tables: how each interface's
-- applies went (worker_state), the device as last read and reconciled
-- (device, device_peer), traffic totals (peer_traffic), the server history
-- it last ran on and the interfaces to sweep after a change of history.
-- In node mode a node publishes its worker's tables back to the primary,
-- keyed by the node that wrote each row (07-node.sql).
------------------------------------------------------------------------------

CREATE TABLE queue (
	change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	interface text NOT NULL REFERENCES interface,
	peer_id uuid NOT NULL REFERENCES peer,
	op text NOT NULL CHECK (op IN ('add', 'remove')),
	public_key text NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT now(),
	attempts integer NOT NULL DEFAULT 0,
	last_error text,
	next_attempt_at timestamptz,
	-- A change the device refused (a full device, say) is quarantined: it
	-- keeps its own error and waits until quarantined_until, backing off
	-- exponentially, while every other change goes through.  A later
	-- change of the same key supersedes it.
	quarantined_until timestamptz
);
COMMENT ON TABLE queue IS 'Peer changes waiting to reach the interface';
COMMENT ON COLUMN queue.quarantined_until IS
	'Refused by the device: not retried before this (see last_error)';
CREATE INDEX queue_interface ON queue (interface, change_id);
CREATE INDEX queue_quarantined ON queue (interface, public_key, change_id)
	WHERE quarantined_until IS NOT NULL;

-- Every statement that queues a change tells the transaction to wake the
-- apply worker when it commits.
CREATE TRIGGER queue_wake AFTER INSERT ON queue
	FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('queue');

-- The queue's main writer: each transition of a peer that changes what
-- belongs on an interface this cluster serves queues its change.  Enabled
-- ALWAYS, so that it also fires where logical replication applies the
-- primary's rows on a node.
CREATE FUNCTION wg_queue_change() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_queue_change' LANGUAGE C;
CREATE TRIGGER peer_queue AFTER INSERT OR UPDATE ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_queue_change();
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_queue;

-- What the apply worker knows about each interface it has served.
CREATE TABLE worker_state (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	last_success_at timestamptz,
	last_error text,
	last_error_at timestamptz,
	failures integer NOT NULL DEFAULT 0,	-- consecutive failed applies
	retry_at timestamptz,					-- no apply before this
	-- The device's own settings (private key, listen port) are applied
	-- apart from the peers; when the device refuses them (a listen port
	-- another interface holds), the error is kept here and no peer waits.
	settings_error text,
	settings_error_at timestamptz,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	-- Hung userspace daemons and failing config exports: since when the
	-- interface's userspace WireGuard daemon has not answered (the worker
	-- leaves it alone until it does), and why the exported config files
	-- could not be brought up to date.
	unresponsive_since timestamptz,
	export_error text,
	export_error_at timestamptz,
	-- Why the speed limits could not be applied on the interface
	-- (10-speed-limits.sql: someone else's root qdisc, say).
	rates_error text,
	rates_error_at timestamptz,
	PRIMARY KEY (interface, node)
);
COMMENT ON TABLE worker_state IS 'Apply worker outcome per interface';
COMMENT ON COLUMN worker_state.rates_error IS
	'Why the speed limits could not be applied on the interface, NULL when they are';
COMMENT ON COLUMN worker_state.rates_error_at IS
	'Since when rates_error has been set';
COMMENT ON COLUMN worker_state.settings_error IS
	'Why the device refused its private key or listen port, NULL when it took them';
COMMENT ON COLUMN worker_state.node IS 'The node that wrote the row; empty for this server itself';
COMMENT ON COLUMN worker_state.unresponsive_since IS
	'Since when the interface''s userspace daemon has not answered; NULL when it answers';
COMMENT ON COLUMN worker_state.export_error IS
	'Why its files in wgpeer.export_dir could not be brought up to date, NULL when they are';
COMMENT ON COLUMN worker_state.export_error_at IS
	'Since when export_error has been set';

-- The kernel's view, as the apply worker last read it for wg_show().
CREATE TABLE device (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	sampled_at timestamptz,
	error text,						-- why the device could not be read
	reconciled_at timestamptz,		-- the last reconcile and what it did
	added integer,
	corrected integer,
	removed integer,
	foreign_peers integer,
	reconcile_error text,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	PRIMARY KEY (interface, node)
);
COMMENT ON TABLE device IS 'When the apply worker last read and reconciled each interface';
COMMENT ON COLUMN device.node IS 'The node that wrote the row; empty for this server itself';

CREATE TABLE device_peer (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	public_key text NOT NULL,
	endpoint text,
	allowed_ips text NOT NULL,
	latest_handshake timestamptz,
	rx_bytes bigint NOT NULL,
	tx_bytes bigint NOT NULL,
	persistent_keepalive integer NOT NULL,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	PRIMARY KEY (interface, public_key, node)
) WITH (fillfactor = 70);
COMMENT ON TABLE device_peer IS 'Peers as the kernel last reported them';
COMMENT ON COLUMN device_peer.node IS 'The node that wrote the row; empty for this server itself';

-- Traffic per peer as cumulative totals: each sample adds the growth of
-- the kernel's counters, so totals survive interface recreation and
-- counter resets (src/worker/stats.c).  Rows are updated in place, only
-- when something changed.  Its triggers: usage (06-events-and-usage.sql),
-- the first handshake starting a plan (05-lifecycle.sql), node rows
-- (07-node.sql).
CREATE TABLE peer_traffic (
	peer_id uuid NOT NULL REFERENCES peer ON DELETE CASCADE,
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	latest_handshake timestamptz,
	endpoint text,
	sampled_at timestamptz NOT NULL,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	PRIMARY KEY (peer_id, node)
) WITH (fillfactor = 70);
COMMENT ON TABLE peer_traffic IS 'Cumulative traffic and last handshake per peer';
COMMENT ON COLUMN peer_traffic.node IS 'The node that wrote the row; empty for this server itself';

-- Per interface: how much waits, since when, and how the last apply went,
-- from the rows of the node serving it.
CREATE VIEW interface_status AS
	SELECT i.name AS interface,
		   count(q.change_id) AS backlog,
		   min(q.queued_at) AS oldest_pending,
		   max(q.attempts) AS attempts,
		   s.last_success_at, s.last_error, s.last_error_at, s.retry_at,
		   count(q.change_id) FILTER (WHERE q.quarantined_until IS NOT NULL)
			   AS quarantined,
		   (array_agg(q.last_error ORDER BY q.change_id DESC)
				FILTER (WHERE q.quarantined_until IS NOT NULL))[1]
			   AS quarantine_error,
		   s.settings_error, s.settings_error_at,
		   s.unresponsive_since, s.export_error, s.export_error_at,
		   s.rates_error, s.rates_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name AND s.node = i.node
	GROUP BY i.name, s.interface, s.node;
COMMENT ON VIEW interface_status IS 'Apply backlog and errors per interface';

-- Peers with their traffic and whether they are online (a handshake in
-- the last 3 minutes), from the rows of the node serving each, and their
-- speed limits in effect (NULL: none) with where each comes from ('peer',
-- 'interface': 10-speed-limits.sql).
CREATE VIEW peer_status AS
	SELECT p.peer_id, p.user_id, p.interface, p.address, p.address6,
		   p.status, p.expires_at, t.latest_handshake, t.endpoint,
		   coalesce(t.rx_bytes, 0) AS rx_bytes,
		   coalesce(t.tx_bytes, 0) AS tx_bytes,
		   coalesce(t.latest_handshake > now() - interval '3 minutes', false)
			   AS online,
		   t.sampled_at,
		   nullif(coalesce(p.down_kbit, i.down_kbit), 0) AS down_kbit,
		   nullif(coalesce(p.up_kbit, i.up_kbit), 0) AS up_kbit,
		   CASE WHEN p.down_kbit IS NOT NULL THEN 'peer'
				WHEN i.down_kbit IS NOT NULL THEN 'interface' END AS down_from,
		   CASE WHEN p.up_kbit IS NOT NULL THEN 'peer'
				WHEN i.up_kbit IS NOT NULL THEN 'interface' END AS up_from
	FROM peer p
	LEFT JOIN interface i ON i.name = p.interface
	LEFT JOIN peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node;
COMMENT ON VIEW peer_status IS 'Peers with cumulative traffic and online flag';

-- The device as the apply worker reads it, and a reconcile now
-- (src/sql/show.c, src/sql/reconcile.c: both ask the worker).
CREATE FUNCTION wg_show(interface text DEFAULT NULL)
RETURNS TABLE (public_key text, endpoint text, allowed_ips text,
			   latest_handshake timestamptz, rx_bytes bigint, tx_bytes bigint,
			   persistent_keepalive integer)
	AS 'MODULE_PATHNAME', 'wg_show'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_show IS
	'The live peers of an interface, read from the kernel by the apply worker';

CREATE FUNCTION wg_reconcile(interface text DEFAULT NULL)
RETURNS TABLE (interface text, added integer, corrected integer,
			   removed integer, foreign_peers integer, error text)
	AS 'MODULE_PATHNAME', 'wg_reconcile'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_reconcile IS
	'Reconcile the interfaces with the database now and report what changed';

-- Standbys and failover (src/worker/history.c).  The server history the
-- database was last served on: the cluster's system identifier and
-- timeline, as the apply worker found them when it started.  When they
-- change (a standby promoted, a point-in-time recovery, a restore or
-- pg_upgrade onto another cluster), the old history may have made commits
-- this database lacks: the worker then moves event_id_seq a billion ids
-- on, so that no id a consumer already read is issued again, and marks
-- every interface in stale_sweep.  A database without a row (a fresh
-- install, an update, a restore of a dump without this table's rows) gets
-- one at the worker's first start, with nothing moved.
CREATE TABLE server_history (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	system_identifier numeric NOT NULL,
	timeline bigint NOT NULL,
	since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE server_history IS
	'The system identifier and timeline the apply worker last served this database on';

-- Interfaces whose next successful reconcile also removes the peers the
-- database does not know whose allowed IPs lie in the interface's pool (or
-- its IPv6 prefix): after a change of history only wgpeer can have put
-- them there, for peers the lost commits created.  Rebuilt, not dumped.
CREATE TABLE stale_sweep (
	interface text PRIMARY KEY REFERENCES interface ON DELETE CASCADE,
	since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE stale_sweep IS
	'Interfaces to clear of stale peers in their pool after a promotion or restore';
