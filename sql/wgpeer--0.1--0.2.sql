-- wgpeer 0.1 -> 0.2
\echo Use "ALTER EXTENSION wgpeer UPDATE TO '0.2'" to load this file. \quit

------------------------------------------------------------------------------
-- One failing change never holds back the others.
------------------------------------------------------------------------------

-- A change the device refused (a full device, say) is quarantined: it
-- keeps its own error and waits until quarantined_until, backing off
-- exponentially, while every other change goes through.  A later change
-- of the same key supersedes it.
ALTER TABLE queue ADD COLUMN quarantined_until timestamptz;
COMMENT ON COLUMN queue.quarantined_until IS
	'Refused by the device: not retried before this (see last_error)';
CREATE INDEX queue_quarantined ON queue (interface, public_key, change_id)
	WHERE quarantined_until IS NOT NULL;

-- The device's own settings (private key, listen port) are applied apart
-- from the peers; when the device refuses them (a listen port another
-- interface holds), the error is kept here and no peer waits for it.
ALTER TABLE worker_state
	ADD COLUMN settings_error text,
	ADD COLUMN settings_error_at timestamptz;
COMMENT ON COLUMN worker_state.settings_error IS
	'Why the device refused its private key or listen port, NULL when it took them';

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
		   s.settings_error, s.settings_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name
	GROUP BY i.name, s.interface;

------------------------------------------------------------------------------
-- One wording for an interface wgpeer does not know.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION wg_remove_interface(name text, force boolean DEFAULT false)
	RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	ifname text := wg_remove_interface.name;
	live bigint;
	backlog bigint;
	removed bigint;
BEGIN
	IF ifname IS NULL OR force IS NULL THEN
		RAISE EXCEPTION 'name and force of wg_remove_interface() must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the name as wgpeer.interface has it; force defaults to false.';
	END IF;
	-- the lock waits for allocators (their peer rows hold a key share
	-- of it) and keeps new ones out until this transaction ends
	PERFORM 1 FROM wgpeer.interface i WHERE i.name = ifname FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'interface "%" is not registered with wgpeer', ifname
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_interface(); '
						 'SELECT name FROM wgpeer.interface lists those that are.';
	END IF;

	SELECT count(*) FILTER (WHERE p.status IN ('creating', 'active'))
		INTO live FROM wgpeer.peer p WHERE p.interface = ifname;
	SELECT count(*) INTO backlog FROM wgpeer.queue q WHERE q.interface = ifname;
	IF NOT force AND live > 0 THEN
		RAISE EXCEPTION 'interface "%" still has live peers', ifname
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('Peers in state creating or active: %s.', live),
				  HINT = 'Revoke them with wgpeer.wg_revoke_peer() and let the apply worker '
						 'remove them, or pass force => true to forget them (they stay on '
						 'the WireGuard interface).';
	END IF;
	IF NOT force AND backlog > 0 THEN
		RAISE EXCEPTION 'interface "%" has changes the apply worker has not applied yet',
				ifname
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('Queued changes: %s.', backlog),
				  HINT = 'Wait until wgpeer.interface_status shows a backlog of 0 for it, '
						 'or pass force => true to drop them unapplied.';
	END IF;

	DELETE FROM wgpeer.queue q WHERE q.interface = ifname;
	DELETE FROM wgpeer.peer p WHERE p.interface = ifname;
	GET DIAGNOSTICS removed = ROW_COUNT;
	DELETE FROM wgpeer.interface i WHERE i.name = ifname;
	RETURN removed;
END
$$;
