-- 0019's backfill, without DDL, so it takes row locks only and the serving release
-- keeps reading and writing article_versions meanwhile (platform/README.md, "Writing a
-- migration"). One row per article.
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
