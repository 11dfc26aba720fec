-- 在看 and likes entered by hand were not bounded before this release: an editor key
-- could enter 1,000,000 likes for an article read 300 times, and the ranking still reads
-- them. Every 在看 or like needs a reader (domain/figures.rs), so rows whose reads are
-- known (pulled, or entered by hand) keep at most their reads; what was entered stays in
-- article_figure_entries. Rows whose reads are not known yet are capped by their day-7
-- pull. The previous release, during a rollout, still accepts unbounded entries; the
-- pull caps them on a datacube account.
UPDATE article_figures
   SET zaikan = LEAST(zaikan, reads), likes = LEAST(likes, reads)
 WHERE (pulled_at IS NOT NULL OR entered_by = 'datacube' OR reads > 0)
   AND (zaikan > reads OR likes > reads);
