-- What else a version was besides its text: its cover, 阅读原文 link, column and
-- comment flags, so "what exactly did reviewer X approve" is answered from the
-- version the review names (0003 kept title, author, digest and body only).
-- Nullable: NULL is "not recorded" (a version saved before this migration, or by
-- the previous release's binary during a rollout, which does not write them).
ALTER TABLE article_versions
    ADD COLUMN cover_media_id text,
    ADD COLUMN cover_image_id uuid,
    ADD COLUMN source_url text,
    ADD COLUMN column_name text,
    ADD COLUMN open_comment boolean,
    ADD COLUMN only_fans_can_comment boolean;

-- The current versions are filled in by 0020, a migration of its own: an UPDATE here
-- would hold this ALTER's ACCESS EXCLUSIVE lock (every read of article_versions by the
-- serving release waits) for the whole backfill.
