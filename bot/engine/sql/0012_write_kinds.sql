-- Every mutative request of an installation is spaced, but only the content-creating ones
-- count in GitHub's minute and hour windows (bot/github/throttle.py `SharedWriteThrottle`):
-- each send records which it was. Rows from before this migration were all counted.
ALTER TABLE review_loop_write_sends ADD COLUMN creates boolean NOT NULL DEFAULT true;
