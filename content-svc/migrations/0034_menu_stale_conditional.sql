-- Conditional menus of a tag that may still be on WeChat although the menu row no
-- longer names them: a replaced one whose menu/delconditional failed (its id would
-- otherwise be overwritten by the new one's and the menu left to match the tag's
-- followers). Deleted again by the next publication of the tag and by
-- DeleteConditionalMenu; 65301 (already gone) takes one off.
ALTER TABLE menus ADD COLUMN stale_menuids text[] NOT NULL DEFAULT '{}';
