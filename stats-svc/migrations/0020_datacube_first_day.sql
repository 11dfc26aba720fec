-- The first day each API's pull stored: the last day of its first chunk, which for
-- getarticletotal and getarticlesummary (one day per call) is the first day pulled.
-- An account added to the install mid-month, further back than DATACUBE_BACKFILL_DAYS
-- reaches, has the datacube's figures of that month from this day only, and the
-- ranking marks it 数据不全 (figures_incomplete) for that month. Rows pulled before this
-- migration stay NULL: their first day is not known, and they are not marked.
ALTER TABLE datacube_progress ADD COLUMN first_day date;
