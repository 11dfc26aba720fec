-- The width-fold re-index (0015) runs in the background, a page of documents per
-- transaction, instead of in one transaction before the replica serves (30,000
-- articles took minutes, more memory than the pod has, and held the search_version
-- row lock the whole time). This is how far it got, so a restart resumes there:
-- services first, then published articles, each in id order after `after_id`.
ALTER TABLE search_refolds
    ADD COLUMN phase text NOT NULL DEFAULT 'service' CHECK (phase IN ('service', 'article')),
    ADD COLUMN after_id uuid;
