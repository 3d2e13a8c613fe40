-- The write throttle every process shares (bot/throttle.py `SharedWriteThrottle`): when each
-- content-creating GitHub request of an installation was sent, kept for an hour, and until
-- when GitHub asked us to hold the installation's writes. Times are seconds since the epoch
-- by the database's clock, so workers on machines whose clocks disagree still agree here.
CREATE TABLE review_loop_write_sends (
    installation_id bigint NOT NULL,
    sent_at         double precision NOT NULL
);
CREATE INDEX review_loop_write_sends_installation
    ON review_loop_write_sends (installation_id, sent_at);

CREATE TABLE review_loop_write_pauses (
    installation_id bigint PRIMARY KEY,
    paused_until    double precision NOT NULL
);
