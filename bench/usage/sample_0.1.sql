-- One traffic sample as wgpeer 0.1's worker wrote it (src/worker/stats.c,
-- store_device), fed the table dump instead of a device dump: every
-- device_peer row and every peer row is locked, changed or not.
WITH s AS (SELECT public_key, endpoint, allowed_ips, latest_handshake,
                  rx_bytes, tx_bytes, persistent_keepalive FROM dump),
 sample AS (
  INSERT INTO wgpeer.device_peer AS d (interface, public_key, endpoint, allowed_ips,
    latest_handshake, rx_bytes, tx_bytes, persistent_keepalive)
  SELECT 'wgbs', s.* FROM s
  ON CONFLICT (interface, public_key, node) DO UPDATE
  SET endpoint = EXCLUDED.endpoint, allowed_ips = EXCLUDED.allowed_ips,
      latest_handshake = EXCLUDED.latest_handshake,
      rx_bytes = EXCLUDED.rx_bytes, tx_bytes = EXCLUDED.tx_bytes,
      persistent_keepalive = EXCLUDED.persistent_keepalive
  WHERE (d.endpoint, d.allowed_ips, d.latest_handshake, d.rx_bytes, d.tx_bytes,
         d.persistent_keepalive) IS DISTINCT FROM
        (EXCLUDED.endpoint, EXCLUDED.allowed_ips, EXCLUDED.latest_handshake,
         EXCLUDED.rx_bytes, EXCLUDED.tx_bytes, EXCLUDED.persistent_keepalive))
INSERT INTO wgpeer.peer_traffic AS t (peer_id, rx_bytes, tx_bytes, latest_handshake,
  endpoint, sampled_at)
SELECT p.peer_id,
  CASE WHEN o.rx_bytes IS NULL OR s.rx_bytes < o.rx_bytes THEN s.rx_bytes ELSE s.rx_bytes - o.rx_bytes END,
  CASE WHEN o.tx_bytes IS NULL OR s.tx_bytes < o.tx_bytes THEN s.tx_bytes ELSE s.tx_bytes - o.tx_bytes END,
  s.latest_handshake, s.endpoint, now()
FROM s
LEFT JOIN wgpeer.device_peer o ON o.interface = 'wgbs' AND o.public_key = s.public_key
JOIN wgpeer.peer p ON p.public_key = s.public_key AND p.interface = 'wgbs' AND p.released_at IS NULL
FOR KEY SHARE OF p SKIP LOCKED
ON CONFLICT (peer_id, node) DO UPDATE
SET rx_bytes = t.rx_bytes + EXCLUDED.rx_bytes, tx_bytes = t.tx_bytes + EXCLUDED.tx_bytes,
    latest_handshake = EXCLUDED.latest_handshake, endpoint = EXCLUDED.endpoint, sampled_at = now()
WHERE EXCLUDED.rx_bytes > 0 OR EXCLUDED.tx_bytes > 0
   OR (t.latest_handshake, t.endpoint) IS DISTINCT FROM
      (EXCLUDED.latest_handshake, EXCLUDED.endpoint);
