-- Shares entered by hand were not bounded before this release (0019 bounded only 在看
-- and likes): 5,000,000 shares typed for 500 lifted a county's V14.2 from 455.4 to
-- 665.0 through the share terms. Every share needs a reader (domain/figures.rs), so
-- rows entered by hand whose reads are known keep at most their reads; what was
-- entered stays in article_figure_entries. A pulled row's shares are the datacube's
-- and stay as WeChat counted them. A row with shares and no reads (possible before
-- this release) is left as it is: there is no reads to cap at, and dropping its
-- shares would lose a figure that may be true; an entry of its reads now has to
-- correct both.
UPDATE article_figures
   SET shares = LEAST(shares, reads)
 WHERE pulled_at IS NULL AND entered_by NOT IN ('', 'datacube')
   AND reads > 0 AND shares > reads;
