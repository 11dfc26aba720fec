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

-- An article's current version is known: its row holds exactly that version's
-- content (every write of these columns writes a new version with them). Earlier
-- versions stay NULL.
UPDATE article_versions v
   SET cover_media_id = a.cover_media_id,
       cover_image_id = a.cover_image_id,
       source_url = a.source_url,
       column_name = a.column_name,
       open_comment = a.open_comment,
       only_fans_can_comment = a.only_fans_can_comment
  FROM articles a
 WHERE a.id = v.article_id AND a.version = v.version;
