-- "One category" searches: the headline's GIN index ANDed with this one reads only
-- that category's services, not every headline holding the word (a topic of 4,000
-- articles, to keep the few services of the category): 24-31 ms -> 5-9 ms for
-- 营业执照 in social_security over 100,000 articles (docs/benchmarks.md, "Search").
-- Articles have no category, so the index holds services only.
CREATE INDEX search_headlines_category ON search_headlines (category) WHERE category <> '';
