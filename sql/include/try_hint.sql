-- pg_temp.try() with the error's hint, for the errors that have one.
CREATE FUNCTION pg_temp.try_hint(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' ||
		regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<peer_id>', 'g') ||
		E'\nHINT: ' || hint;
END
$$;
