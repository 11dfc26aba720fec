-- Every chart and check reads one metric of one account over a range of days. The
-- primary key (account, day, metric, key) makes such a read walk every metric of each
-- day, and an account now has a hundred or so counters a day (hourly counters,
-- keyword and directory hits): this index reads only the metric asked for.
CREATE INDEX daily_counts_by_metric ON daily_counts (account, metric, day);
