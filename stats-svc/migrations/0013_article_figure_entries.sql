-- Figures entered by hand feed the monthly ranking, so each accepted entry is kept: who
-- (the key's department and fingerprint) entered what, and when. Figures given as 0 and
-- an empty title were left as stored.
CREATE TABLE article_figure_entries (
    id          bigserial PRIMARY KEY,
    account     text NOT NULL,
    article_id  text NOT NULL,
    department  text NOT NULL,
    key_id      text NOT NULL DEFAULT '',
    title       text NOT NULL DEFAULT '',
    reads       bigint NOT NULL DEFAULT 0,
    zaikan      bigint NOT NULL DEFAULT 0,
    likes       bigint NOT NULL DEFAULT 0,
    shares      bigint NOT NULL DEFAULT 0,
    entered_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_figure_entries_article ON article_figure_entries (account, article_id, entered_at);

-- When the datacube's day-7 pull last wrote an article's reads and shares: a hand entry
-- never replaces them. `entered_by` could not say it (a hand entry after the pull, or
-- before it, leaves the editor's department there). The previous release, during a
-- rollout, still pulls without setting it; its rows keep entered_by = 'datacube' unless
-- an editor had entered 在看 or likes first, and the readers take either as pulled.
ALTER TABLE article_figures ADD COLUMN pulled_at timestamptz;

-- Rows pulled before: the datacube's own, and those an editor touched whose id the
-- datacube's daily summary reported and whose day the day-7 pull has passed.
UPDATE article_figures f SET pulled_at = f.updated_at
 WHERE f.entered_by = 'datacube'
    OR (EXISTS (SELECT 1 FROM datacube_progress p
                 WHERE p.account = f.account AND p.api = 'getarticletotal'
                   AND p.last_day >= f.published_on)
        AND EXISTS (SELECT 1 FROM daily_counts c
                     WHERE c.account = f.account AND c.metric = 'wx_article_reads'
                       AND c.key = f.article_id));
