-- One traffic sample as this version's worker writes it (src/worker/stats.c,
-- store_device), fed the table dump instead of a device dump: only the
-- peers whose counters, handshake or endpoint changed are written or locked.
WITH s AS (SELECT public_key, endpoint, allowed_ips, latest_handshake,
                  rx_bytes, tx_bytes, persistent_keepalive FROM dump),
 changed AS (
  SELECT s.*, o.public_key IS NULL AS new_row,
    o.rx_bytes AS old_rx, o.tx_bytes AS old_tx,
    o.latest_handshake AS old_handshake, o.endpoint AS old_endpoint
  FROM s LEFT JOIN wgpeer.device_peer o
    ON o.interface = 'wgbs' AND o.public_key = s.public_key
  WHERE o.public_key IS NULL
     OR (o.endpoint, o.allowed_ips, o.latest_handshake, o.rx_bytes, o.tx_bytes,
         o.persistent_keepalive) IS DISTINCT FROM
        (s.endpoint, s.allowed_ips, s.latest_handshake, s.rx_bytes, s.tx_bytes,
         s.persistent_keepalive)),
 updated AS (
  UPDATE wgpeer.device_peer d
  SET endpoint = c.endpoint, allowed_ips = c.allowed_ips,
      latest_handshake = c.latest_handshake, rx_bytes = c.rx_bytes,
      tx_bytes = c.tx_bytes, persistent_keepalive = c.persistent_keepalive
  FROM changed c
  WHERE NOT c.new_row AND d.interface = 'wgbs' AND d.public_key = c.public_key),
 inserted AS (
  INSERT INTO wgpeer.device_peer (interface, public_key, endpoint, allowed_ips,
    latest_handshake, rx_bytes, tx_bytes, persistent_keepalive)
  SELECT 'wgbs', c.public_key, c.endpoint, c.allowed_ips, c.latest_handshake,
    c.rx_bytes, c.tx_bytes, c.persistent_keepalive
  FROM changed c WHERE c.new_row
  ON CONFLICT (interface, public_key, node) DO NOTHING)
INSERT INTO wgpeer.peer_traffic AS t (peer_id, rx_bytes, tx_bytes, latest_handshake,
  endpoint, sampled_at)
SELECT p.peer_id,
  CASE WHEN c.old_rx IS NULL OR c.rx_bytes < c.old_rx THEN c.rx_bytes ELSE c.rx_bytes - c.old_rx END,
  CASE WHEN c.old_tx IS NULL OR c.tx_bytes < c.old_tx THEN c.tx_bytes ELSE c.tx_bytes - c.old_tx END,
  c.latest_handshake, c.endpoint, now()
FROM changed c
JOIN wgpeer.peer p ON p.public_key = c.public_key AND p.interface = 'wgbs'
  AND p.released_at IS NULL
WHERE c.new_row OR c.rx_bytes <> c.old_rx OR c.tx_bytes <> c.old_tx
   OR (c.latest_handshake, c.endpoint) IS DISTINCT FROM (c.old_handshake, c.old_endpoint)
FOR KEY SHARE OF p SKIP LOCKED
ON CONFLICT (peer_id, node) DO UPDATE
SET rx_bytes = t.rx_bytes + EXCLUDED.rx_bytes, tx_bytes = t.tx_bytes + EXCLUDED.tx_bytes,
    latest_handshake = EXCLUDED.latest_handshake, endpoint = EXCLUDED.endpoint,
    sampled_at = now()
WHERE EXCLUDED.rx_bytes > 0 OR EXCLUDED.tx_bytes > 0
   OR (t.latest_handshake, t.endpoint) IS DISTINCT FROM
      (EXCLUDED.latest_handshake, EXCLUDED.endpoint);
