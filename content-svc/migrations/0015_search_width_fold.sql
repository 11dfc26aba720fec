-- Search folds full-width letters and digits to half-width (１２３４５ is 12345)
-- before segmenting, documents and queries alike. Documents indexed before hold the
-- full-width words, which a folded query never asks for: this row asks the first
-- replica to start to index again (jieba runs in the service, not here) every
-- service and published article whose text the fold changes, and to delete it in
-- the same transaction.
CREATE TABLE search_refolds (
    reason text PRIMARY KEY
);
INSERT INTO search_refolds (reason) VALUES ('width_fold');
