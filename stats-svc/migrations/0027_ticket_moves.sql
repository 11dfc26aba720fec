-- Every move of a ticket (退单改派): the department it left and when. 0014 and 0017
-- keep the first and the last move only, so of A→B→C→D the department between them
-- (B) was judged nowhere, not for passing the ticket on unacknowledged nor for
-- holding it past the deadline its move gave it, and C was given the grace of the
-- first move. A row per move, written once (the primary key; a redelivery does
-- nothing), read with the ticket's row. A new table: nothing is rewritten, and the
-- previous release neither writes nor reads it; tickets moved before it keep their
-- first and last move only.
CREATE TABLE ticket_moves (
    account   text        NOT NULL,
    ticket_id text        NOT NULL,
    moved_at  timestamptz NOT NULL,
    moved_by  text        NOT NULL,
    PRIMARY KEY (account, ticket_id, moved_at, moved_by)
);
