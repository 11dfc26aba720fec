-- Datacube pulls that are failing, per account and API: a row from the first failed
-- call until the API's next pull succeeds (a rotated AppSecret, 40001/40125, fails every
-- pull and only logged a warning). While an account's `getarticletotal` fails and has not
-- reached a period's last day, that period's WCI is incomplete for it.
CREATE TABLE datacube_failures (
    account          text NOT NULL,
    api              text NOT NULL,
    -- The last failure: WeChat's errcode, or what else went wrong (timeout, transport).
    error            text NOT NULL,
    first_failed_at  timestamptz NOT NULL,
    last_failed_at   timestamptz NOT NULL,
    failures         bigint NOT NULL,
    PRIMARY KEY (account, api)
);
