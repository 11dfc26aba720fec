-- Search folds traditional characters to simplified (醫保報銷 is 医保报销) before
-- segmenting, documents and queries alike. Documents indexed before hold the
-- traditional words, which a folded query never asks for: this row asks the
-- background refold (jobs/refold.rs) to index again every service and published
-- article whose text the fold changes, with its own cursor. A new reason rather
-- than 'width_fold' again: the previous release's replicas, still running in a
-- rolling update, do 'width_fold' with their fold (which leaves traditional text
-- as it is, so they would skip these documents and advance the cursor), and leave
-- a reason they do not know alone.
INSERT INTO search_refolds (reason) VALUES ('traditional_fold') ON CONFLICT (reason) DO NOTHING;
-- Services are indexed with their category's label (户政) and their department
-- (临城市公安局) too, at the body's weight: every service indexed before lacks them.
INSERT INTO search_refolds (reason) VALUES ('service_labels') ON CONFLICT (reason) DO NOTHING;
