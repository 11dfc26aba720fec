-- Needs ACCESS EXCLUSIVE on widgets, which the test's long transaction keeps from it.
ALTER TABLE widgets ADD COLUMN colour text;
