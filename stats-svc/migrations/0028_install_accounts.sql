-- The first office day each account WECHAT_ACCOUNTS names was in the install, written
-- at start-up (stats-svc's store::install::record_named). Without it an account named
-- but never heard of was listed 无发文 in every period, and vanished from every period
-- before its first sign of life once it came, final lists included. The first start-up
-- that finds the table empty records what the lists showed until then (an account
-- heard of from its first day, one never heard of from the start), so no list changes
-- with the upgrade; an account named later is in the install from that day. A new
-- table: the previous release neither writes nor reads it.
CREATE TABLE install_accounts (
    account  text PRIMARY KEY,
    named_on date NOT NULL
);
