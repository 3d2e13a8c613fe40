-- A delivery the intake stores ignored (no handler wants it: 6 in 10 of the bench's mix of
-- real payloads) keeps its id, event, action, installation, repository, sender and reason,
-- not its body: nothing reads it (dispatch reads only the bodies of queued deliveries), and
-- GitHub keeps each delivery with its payload (the App's recent deliveries,
-- `GET /app/hook/deliveries/{id}`). Those bodies were most of what the intake wrote: at
-- ~3,000 deliveries a second the intake's p99 grew from 10 to 50 ms within a minute on this
-- machine's disk (not on tmpfs); without them it stayed at 10-14 ms (docs/benchmarks.md,
-- 7 Dec 2026).
ALTER TABLE review_loop_deliveries ALTER COLUMN body DROP NOT NULL;
