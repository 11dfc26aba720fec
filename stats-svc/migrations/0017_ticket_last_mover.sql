-- The department the latest move (退单改派) left, beside 0014's `moved_in_at`: with
-- several moves (A→B→C) only the first mover was kept, so B, which sat on the ticket
-- and passed it on unacknowledged just before its deadline, was judged for nothing and
-- the miss was charged to A. Nullable: rows written before it, and by the previous
-- release, keep the first mover only.
ALTER TABLE ticket_times ADD COLUMN moved_in_by text;
