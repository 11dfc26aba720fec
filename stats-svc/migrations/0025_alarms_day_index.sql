-- Alarms by day: what ListAlarms, the readiness report and `/` read (a range of days,
-- every account in the caller's scope). The unique key (account, rule, subject, day)
-- leads with the account, so a range of days read every alarm ever raised. Plain
-- CREATE INDEX in a migration of its own, as content-svc 0031/0032 (this release's
-- polling migrator builds without CONCURRENTLY, docs/operations.md, "Upgrades"): it
-- holds SHARE on alarms while it builds, a table of a few rows per account and day,
-- so the inspection job's inserts wait milliseconds.
CREATE INDEX alarms_day ON alarms (day);
