-- A publisher's confirmation (confirm_possible_duplicate) that a send of unknown
-- outcome did not reach followers, not yet used: set when the send again is
-- scheduled or published, consumed when WeChat takes that send (names its job),
-- which is when `send_outcome_unknown` clears. Until then the flag stays, so a
-- confirmed send cancelled, returned or put back on the schedule (WeChat's
-- per-minute limit, a transient failure) still keeps its message whole and its
-- members from going out alone. Any new lost answer, and any settling, clears it.
-- The previous release neither reads nor writes it (it cleared the flag at once).
ALTER TABLE articles ADD COLUMN send_confirmed boolean NOT NULL DEFAULT false;
