-- pg_temp.try(stmt): run a statement and report 'ok', or its SQLSTATE and
-- message with peer ids (random) masked, so that a suite can check an
-- error about a given peer and go on.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' ||
		regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<peer_id>', 'g');
END
$$;
