-- The version of the article handed to WeChat under sent_key (0025), with its
-- place. A send again under the same clientmsgid (a retry, a confirmed send) of an
-- article revised since (returned after a lost answer, corrected, approved again)
-- is not the send WeChat may hold: a 45065 names the old text's job, so a differing
-- version counts as a changed line-up (left to a publisher), and that job's verdict
-- does not record the revision as published. NULL: recorded before this column
-- (compared by place only, as before). The previous release neither reads nor
-- writes it.
ALTER TABLE articles ADD COLUMN sent_version integer;
