-- Deliveries keep the signed body as it came: jsonb refuses valid JSON (a \u0000 in a PR
-- body), and parsing it on the request path was the database's largest cost per delivery.
ALTER TABLE review_loop_deliveries ADD COLUMN body bytea;
UPDATE review_loop_deliveries SET body = convert_to(payload::text, 'UTF8');
ALTER TABLE review_loop_deliveries ALTER COLUMN body SET NOT NULL;
ALTER TABLE review_loop_deliveries DROP COLUMN payload;
-- New bodies come lz4-compressed by the bot (bot/webhooks/payload.py): kept inline, not
-- compressed again.
ALTER TABLE review_loop_deliveries ALTER COLUMN body SET STORAGE MAIN;
-- Nothing looks deliveries up by status; without the index, dispatch's updates stay HOT.
DROP INDEX review_loop_deliveries_status;
