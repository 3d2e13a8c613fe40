-- A delivery's row is ~3 KB: its body is an lz4 frame (bot/webhooks/payload.py). Over
-- toast_tuple_target (2 KB by default) PostgreSQL ran pglz over each such row before storing
-- it, and kept the result only if it saved a quarter: it never did (an lz4 frame does not
-- compress again), so every insert paid a compression pass for nothing. With the target at
-- its maximum (a page less its header) a row is stored as it comes unless it does not fit a
-- page; a body whose frame is larger is still moved to TOAST as before. Measured: 0.149 ->
-- 0.111 ms of PostgreSQL CPU per delivery in batches of 6 (docs/benchmarks.md, 7 Dec 2026).
ALTER TABLE review_loop_deliveries SET (toast_tuple_target = 8160);
