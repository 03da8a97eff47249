-- wgpeer 0.2 -> 0.3
\echo Use "ALTER EXTENSION wgpeer UPDATE TO '0.3'" to load this file. \quit

-- 0.3 is the security and data-safety release.  Each section below belongs
-- to one change; keep them apart so they read (and merge) on their own.

------------------------------------------------------------------------------
-- Backups: pg_dump saves the tables' rows
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Node mode: rows from a node are checked against the node that sent them
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Routes: no other interface's prefixes, no reserved ranges, default
-- routes for admins only
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Peers wgpeer does not manage are never touched
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Standbys and failover
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Smaller fixes
------------------------------------------------------------------------------

-- Hung userspace daemons and failing config exports (issue 19, parts 3
-- and 4), shown per interface: since when its userspace WireGuard daemon
-- has not answered (the worker leaves it alone until it does), and why
-- the exported config files could not be brought up to date.
ALTER TABLE worker_state
	ADD COLUMN unresponsive_since timestamptz,
	ADD COLUMN export_error text,
	ADD COLUMN export_error_at timestamptz;
COMMENT ON COLUMN worker_state.unresponsive_since IS
	'Since when the interface''s userspace daemon has not answered; NULL when it answers';
COMMENT ON COLUMN worker_state.export_error IS
	'Why its files in wgpeer.export_dir could not be brought up to date, NULL when they are';
COMMENT ON COLUMN worker_state.export_error_at IS
	'Since when export_error has been set';

CREATE OR REPLACE VIEW interface_status AS
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
		   s.unresponsive_since, s.export_error, s.export_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name
	GROUP BY i.name, s.interface;
