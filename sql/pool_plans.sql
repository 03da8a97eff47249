-- The allocator plans its statements once per session: wg_next_ip()
-- then plans only the caller's own statement (one PLANNER STATISTICS
-- line per call after the first).  Custom plans, made afresh for the
-- first five calls, cost a session's first allocations twice the later
-- ones.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS wgpeer;
RESET client_min_messages;
SELECT name FROM wgpeer.wg_add_interface('wgpp', '198.51.100.11:51831', '10.221.0.1/24',
                                         listen_port => 51831);
SELECT count(*) FROM wgpeer.wg_create_peer('pp-a', interface => 'wgpp');
-- a new session, so that no plan of the allocator exists yet
\c
\set VERBOSITY terse
SET log_planner_stats = on;
SET client_min_messages = log;
SELECT wgpeer.wg_next_ip('wgpp') AS first;
SELECT wgpeer.wg_next_ip('wgpp') AS second;
SELECT wgpeer.wg_next_ip('wgpp') AS third;
SELECT wgpeer.wg_next_ip('wgpp') AS fourth;
SELECT wgpeer.wg_next_ip('wgpp') AS fifth;
SELECT wgpeer.wg_next_ip('wgpp') AS sixth;
RESET client_min_messages;
RESET log_planner_stats;
